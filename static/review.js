// Keyboard shortcuts and "play in sync" for the pair screen. Works with htmx swaps of #pair-card.
(function () {
  function card() { return document.getElementById("pair-card"); }

  function playInSync() {
    const a = document.getElementById("player-a");
    const b = document.getElementById("player-b");
    if (!a || !b) return;
    a.currentTime = parseFloat(a.dataset.start || "0");
    b.currentTime = parseFloat(b.dataset.start || "0");
    a.play();
    b.play();
  }

  document.addEventListener("click", function (event) {
    if (event.target && event.target.id === "play-sync") playInSync();
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
  });

  document.addEventListener("keydown", function (event) {
    if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    if (!card()) return;
    if (event.key === " ") { event.preventDefault(); playInSync(); return; }
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
