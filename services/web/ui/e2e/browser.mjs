// Browser end-to-end check of the web UI, run by services/local's
// TestBrowser: headless Chromium (the system's, never a downloaded one)
// loads the page, sees recommendations, clicks one, sees the user's
// affinity for that item's category grow, sees the experiment panel, and
// saves a screenshot. It also checks the page's security headers (a strict
// Content-Security-Policy, nosniff, a referrer policy) and that the browser
// reported no CSP violation all along (securitypolicyviolation events and
// "Refused to ..." console errors). Usage: node browser.mjs URL SCREENSHOT
import { chromium } from "playwright-core";

const [url, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const violations = [];
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    console.error("page:", m.text());
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  // Runs before the page's own scripts (injected by the browser, so the
  // CSP does not apply to it): collects every violation the page reports.
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`));
  });
  // A visitor the simulated users never are, so the click is the first.
  const resp = await page.goto(url + "/?user=e2e-visitor");
  const headers = resp.headers();
  const csp = headers["content-security-policy"] || "";
  for (const directive of ["default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"]) {
    if (!csp.includes(directive)) throw new Error(`Content-Security-Policy ${JSON.stringify(csp)} lacks ${directive}`);
  }
  if (/unsafe-inline|unsafe-eval/.test(csp)) throw new Error(`Content-Security-Policy allows unsafe code: ${csp}`);
  if (headers["x-content-type-options"] !== "nosniff") throw new Error(`X-Content-Type-Options = ${headers["x-content-type-options"]}, want nosniff`);
  if (!["no-referrer", "strict-origin", "strict-origin-when-cross-origin"].includes(headers["referrer-policy"])) {
    throw new Error(`Referrer-Policy = ${headers["referrer-policy"]}, want no-referrer or strict-origin`);
  }
  await page.waitForSelector("#recs li[data-item]", { timeout: 30000 });
  const meta = await page.textContent("#recs-meta");
  if (!/model v/.test(meta)) throw new Error(`recommendations without a model version: ${meta}`);

  const weights = () => page.$$eval("#affinity .bar", (els) =>
    Object.fromEntries(els.map((e) => [e.dataset.category, parseFloat(e.lastElementChild.textContent)])));
  // The demo world's catalogue loads beside the first model: until it has,
  // items come without their attributes. Reload until the first has one.
  let first, category;
  for (const end = Date.now() + 30000; ; await new Promise((r) => setTimeout(r, 500))) {
    first = await page.$("#recs li[data-item]");
    category = first && await first.$eval(".cat", (e) => e.textContent);
    if (category) break;
    if (Date.now() > end) throw new Error("the first recommendation had no category 30 s after the page loaded");
    await page.reload();
    await page.waitForSelector("#recs li[data-item]", { timeout: 30000 });
  }
  const before = await weights();
  const clickedAt = Date.now();
  await first.click();
  // Polled from here, not with page.waitForFunction: that compiles its
  // predicate inside the page, which the CSP (no 'unsafe-eval') refuses.
  for (const end = Date.now() + 30000; ; await new Promise((r) => setTimeout(r, 200))) { // generous: the time it took is reported, not asserted
    if (((await weights())[category] || 0) > (before[category] || 0)) break;
    if (Date.now() > end) {
      const seen = [...violations, ...await page.evaluate(() => window.__cspViolations)];
      throw new Error(`the affinity for ${category} did not grow within 30 s of the click (CSP violations so far: ${seen.length ? seen.join("; ") : "none"})`);
    }
  }
  const visibleAfter = Date.now() - clickedAt;

  await page.waitForSelector("#experiment .arm", { timeout: 15000 });
  await page.waitForSelector("#models tbody tr", { timeout: 15000 });
  await page.screenshot({ path: shot, fullPage: true });
  violations.push(...await page.evaluate(() => window.__cspViolations));
  if (violations.length) throw new Error(`Content-Security-Policy violations: ${violations.join("; ")}`);
  console.log(JSON.stringify({ ok: true, category, affinityVisibleAfterMs: visibleAfter, meta, csp }));
} finally {
  await browser.close();
}
