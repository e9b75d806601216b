// What htmx swaps in is made known to keyboard and screen-reader users: focus goes to the new
// content's heading (else it stays on a button that no longer exists, and the next Tab starts from
// the top of the page), and the region's announcement is read out by the page's one live region
// (#announce in base.html; a live region swapped in with its text is not read by screen readers).
(function () {
  "use strict";

  function announce(text) {
    const live = document.getElementById("announce");
    if (!live || !text) return;
    // emptied first, so that the same sentence twice in a row (two refusals) is read twice
    live.textContent = "";
    setTimeout(function () { live.textContent = text; }, 50);
  }
  window.astradupAnnounce = announce;

  // A swapped region opts in with data-swap-focus (and names what to read in data-announce); polled parts (the library's status bar) do not,
  // so a poll never takes the focus from where the user is.
  document.addEventListener("htmx:afterSettle", function (event) {
    const old = event.detail.target;
    // an outerHTML swap replaced the target: the new element carries its id
    const region = old && old.id ? document.getElementById(old.id) : null;
    if (!region || !region.hasAttribute("data-swap-focus")) return;
    const heading = region.querySelector("h1, h2");
    if (heading) {
      if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
    // data-announce: the selectors of what to read, in that order
    const selectors = (region.getAttribute("data-announce") || "").split(",");
    const found = [];
    selectors.forEach(function (sel) { if (sel.trim()) found.push.apply(found, region.querySelectorAll(sel.trim())); });
    const parts = found.map(function (el) {
      return el.textContent.replace(/\s+/g, " ").trim();
    });
    announce(parts.filter(Boolean).join(" "));
  });
})();
