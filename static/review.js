// Keyboard shortcuts for the pair screen's buttons (static/decide.js: the players, space, arrows, `?`
// and the switch that turns single-key shortcuts off). Works with htmx swaps of #pair-card.
(function () {
  function card() { return document.getElementById("pair-card"); }

  document.addEventListener("click", function (event) {
    if (event.target && event.target.closest && event.target.closest(".history-back")) history.back();
  });

  // a refused decision (409) is swapped in with its message (htmx-config in base.html); any other
  // error response would otherwise change nothing on screen
  document.addEventListener("htmx:responseError", function (event) {
    const list = card() && card().querySelector("ul.messages");
    if (!list) return;
    const item = document.createElement("li");
    item.className = "error";
    item.textContent = "The server answered " + event.detail.xhr.status + ": nothing was saved. Reload the page.";
    list.replaceChildren(item);
    if (window.astradupAnnounce) window.astradupAnnounce(item.textContent);
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || document.documentElement.dataset.shortcuts === "off") return;
    // typing is left alone; a focused radio (the copy to keep) or checkbox is not typing
    const field = event.target.closest("textarea, select, [contenteditable], input");
    if (field && !/^(radio|checkbox|button|submit|reset|range)$/.test(field.type || "")) return;
    if (!card() || event.target.closest("dialog")) return;
    const target = card().querySelector('[data-key="' + event.key.toLowerCase() + '"]');
    if (!target || target.disabled) return;
    event.preventDefault();
    target.click();
  });
})();

// Hovering a keyframe lights up the frame it is aligned with in the other video's strip.
document.addEventListener("mouseover", function (event) {
  const thumb = event.target.closest && event.target.closest(".thumb[data-pair]");
  document.querySelectorAll(".thumb.lit").forEach(function (el) { el.classList.remove("lit"); });
  if (!thumb) return;
  thumb.classList.add("lit");
  const other = document.getElementById(thumb.dataset.pair);
  if (other) { other.classList.add("lit"); other.scrollIntoView({block: "nearest", inline: "nearest"}); }
});
