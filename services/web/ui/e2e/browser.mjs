// Browser end-to-end check of the web UI, run by services/local's
// TestBrowser: headless Chromium (the system's, never a downloaded one)
// loads the page, sees recommendations, clicks one, sees the user's
// affinity for that item's category grow, sees the experiment panel, and
// saves a screenshot. Usage: node browser.mjs URL SCREENSHOT
import { chromium } from "playwright-core";

const [url, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") console.error("page:", m.text()); });
  // A visitor the simulated users never are, so the click is the first.
  await page.goto(url + "/?user=e2e-visitor");
  await page.waitForSelector("#recs li[data-item]", { timeout: 30000 });
  const meta = await page.textContent("#recs-meta");
  if (!/model v/.test(meta)) throw new Error(`recommendations without a model version: ${meta}`);

  const weights = () => page.$$eval("#affinity .bar", (els) =>
    Object.fromEntries(els.map((e) => [e.dataset.category, parseFloat(e.lastElementChild.textContent)])));
  const before = await weights();
  const first = await page.$("#recs li[data-item]");
  const category = await first.$eval(".cat", (e) => e.textContent);
  const clickedAt = Date.now();
  await first.click();
  await page.waitForFunction(([cat, old]) => {
    const el = document.querySelector(`#affinity .bar[data-category="${cat}"]`);
    return el && parseFloat(el.lastElementChild.textContent) > (old[cat] || 0);
  }, [category, before], { timeout: 30000 }); // generous: the time it took is reported, not asserted
  const visibleAfter = Date.now() - clickedAt;

  await page.waitForSelector("#experiment .arm", { timeout: 15000 });
  await page.waitForSelector("#models tbody tr", { timeout: 15000 });
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ ok: true, category, affinityVisibleAfterMs: visibleAfter, meta }));
} finally {
  await browser.close();
}
