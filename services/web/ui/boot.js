// If the bundle is missing, say how to build it. A file of its own, not an
// inline script: the Content-Security-Policy allows scripts from this
// origin only.
window.addEventListener("error", (e) => {
  if (e.target && e.target.tagName === "SCRIPT") {
    const el = document.getElementById("error");
    el.textContent = "The UI bundle is missing: run `make ui` (make run does it).";
    el.hidden = false;
  }
}, true);
