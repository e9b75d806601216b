// The pair screen's players on the aligned line, and the single-key shortcuts' switch and help.
// The card (#pair-card) is swapped by htmx after each decision: everything here is delegated
// from the document, and the line is read from the card's data attributes at each use.
(function () {
  "use strict";
  const STORE = "astradup-shortcuts";

  // a radio or a checkbox takes no letters: shortcuts go on working once one was clicked
  function typing(el) {
    if (!el || !el.closest) return false;
    if (el.closest("textarea, select, [contenteditable]")) return true;
    return el.matches("input") && !/^(radio|checkbox|button|submit|reset|range)$/.test(el.type);
  }

  // ---- single-key shortcuts: on unless turned off here (WCAG 2.1.4), remembered per browser
  function shortcutsOn() {
    try { return localStorage.getItem(STORE) !== "off"; } catch (e) { return true; }
  }
  function showShortcutState() {
    const on = shortcutsOn();
    // review.js reads this before acting on a key
    document.documentElement.dataset.shortcuts = on ? "on" : "off";
    const box = document.getElementById("shortcuts-on");
    if (box) box.checked = on;
  }
  showShortcutState();
  document.addEventListener("change", function (event) {
    if (event.target.id !== "shortcuts-on") return;
    try { localStorage.setItem(STORE, event.target.checked ? "on" : "off"); } catch (e) { /* private mode: this page only */ }
    document.documentElement.dataset.shortcuts = event.target.checked ? "on" : "off";
  });
  function openHelp() {
    const help = document.getElementById("shortcuts-help");
    if (help && !help.open) { showShortcutState(); help.showModal(); }
  }

  // ---- the aligned line: t_b = speed * t_a + offset; A leads, B follows
  function line() {
    const card = document.getElementById("pair-card");
    const a = document.getElementById("player-a");
    const b = document.getElementById("player-b");
    if (!card || !a || !b) return null;
    const num = function (v, d) { const x = parseFloat(v); return isFinite(x) ? x : d; };
    const speed = num(card.dataset.speed, 1);
    return {
      a: a, b: b, speed: speed > 0 ? speed : 1,
      offset: num(card.dataset.offset, 0),
      step: num(card.dataset.step, 1) || 1,
      startA: num(card.dataset.startA, 0),
    };
  }
  function toB(l, t) { return l.speed * t + l.offset; }
  function toA(l, t) { return (t - l.offset) / l.speed; }
  function clamp(x, lo, hi) { return Math.min(Math.max(x, lo), hi); }
  function inB(l, t) { return t >= 0 && (!isFinite(l.b.duration) || t <= l.b.duration); }
  function play(video) { const p = video.play(); if (p && p.catch) p.catch(function () {}); }

  let timer = null;
  // While A plays, B is kept on the line: far off (a seek, a stall) it jumps there, a little off its
  // rate is trimmed so it catches up without a visible jump.
  function follow() {
    const l = line();
    if (!l) { stopFollowing(); return; }
    const want = toB(l, l.a.currentTime);
    if (!inB(l, want)) { if (!l.b.paused) l.b.pause(); return; }
    const rate = l.speed * l.a.playbackRate;
    if (l.a.paused) { l.b.pause(); l.b.currentTime = want; return; }
    if (l.b.paused) { l.b.currentTime = want; l.b.playbackRate = rate; play(l.b); return; }
    const ahead = l.b.currentTime - want;
    if (Math.abs(ahead) > 0.3) { l.b.currentTime = want; l.b.playbackRate = rate; return; }
    l.b.playbackRate = rate * (1 - clamp(ahead, -0.25, 0.25));
  }
  function startFollowing() { if (timer === null) timer = setInterval(follow, 100); follow(); }
  function stopFollowing() { if (timer !== null) { clearInterval(timer); timer = null; } }

  // B is muted while it follows A: two soundtracks a moment apart (B at another speed) are
  // noise; its own setting comes back when A stops
  function muteB(l) {
    if (l.b.dataset.ownMuted === undefined) l.b.dataset.ownMuted = l.b.muted ? "1" : "0";
    l.b.muted = true;
  }
  function unmuteB(l) {
    if (l.b.dataset.ownMuted === undefined) return;
    l.b.muted = l.b.dataset.ownMuted === "1";
    delete l.b.dataset.ownMuted;
  }

  // media events do not bubble: listened to in the capture phase, for the players of any card
  document.addEventListener("play", function (event) {
    if (event.target.id !== "player-a") return;
    const l = line();
    if (l) muteB(l);
    startFollowing();
  }, true);
  document.addEventListener("pause", function (event) {
    if (event.target.id !== "player-a") return;
    stopFollowing();
    const l = line();
    if (l) { l.b.pause(); unmuteB(l); }
  }, true);
  document.addEventListener("seeked", function (event) {
    const l = line();
    if (l && frameViewOpen()) drawFrames();
    if (!l || event.target !== l.a) return;
    const want = toB(l, l.a.currentTime);
    if (inB(l, want) && Math.abs(l.b.currentTime - want) > 0.05) l.b.currentTime = want;
  }, true);

  function playFromSegment() {
    const l = line();
    if (!l) return;
    l.a.currentTime = l.startA;
    const want = toB(l, l.startA);
    if (inB(l, want)) l.b.currentTime = want;
    l.b.playbackRate = l.speed * l.a.playbackRate;
    l.a.dataset.synced = "1";
    play(l.a);
  }
  function toggle() {
    const l = line();
    if (!l) return;
    if (!l.a.paused) { l.a.pause(); return; }
    if (!l.a.dataset.synced || l.a.ended) { playFromSegment(); return; }
    play(l.a);
  }
  function step(direction) {
    const l = line();
    if (!l) return;
    l.a.pause();
    const end = isFinite(l.a.duration) ? l.a.duration : Infinity;
    const t = clamp(l.a.currentTime + direction * l.step, 0, end);
    l.a.dataset.synced = "1";
    l.a.currentTime = t;
    const want = toB(l, t);
    if (inB(l, want)) l.b.currentTime = want;
  }
  function seekTo(thumb) {
    const l = line();
    if (!l) return;
    const t = parseFloat(thumb.dataset.t);
    if (!isFinite(t)) return;
    const tA = thumb.dataset.side === "b" ? toA(l, t) : t;
    const tB = thumb.dataset.side === "b" ? t : toB(l, t);
    l.a.dataset.synced = "1";
    l.a.currentTime = clamp(tA, 0, isFinite(l.a.duration) ? l.a.duration : Infinity);
    if (inB(l, tB)) l.b.currentTime = tB;
  }

  // ---- the frame view: both frames of the current aligned moment, large, B laid over A (faded
  // in by the slider) or subtracted from it (difference: black where they agree)
  function frameViewOpen() {
    const view = document.getElementById("frame-view");
    return !!(view && view.open);
  }
  function drawFrames() {
    const l = line();
    const canvas = document.getElementById("frame-canvas");
    if (!l || !canvas) return;
    const w = l.a.videoWidth || 640, h = l.a.videoHeight || 360;
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    const ctx = canvas.getContext("2d");
    const checked = document.querySelector("input[name=frame-mode]:checked");
    const difference = !!checked && checked.value === "difference";
    const mix = document.getElementById("frame-mix");
    ctx.globalCompositeOperation = "source-over";
    ctx.globalAlpha = 1;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, w, h);
    // a player with no decoded frame yet (readyState < 2) draws nothing; its "seeked" redraws
    if (l.a.readyState >= 2) ctx.drawImage(l.a, 0, 0, w, h);
    if (l.b.readyState >= 2) {
      ctx.globalCompositeOperation = difference ? "difference" : "source-over";
      ctx.globalAlpha = mix ? parseInt(mix.value, 10) / 100 : 0.5;
      ctx.drawImage(l.b, 0, 0, w, h);
    }
    ctx.globalCompositeOperation = "source-over";
    ctx.globalAlpha = 1;
    canvas.dataset.drawn = (l.a.readyState >= 2 ? "a" : "") + (l.b.readyState >= 2 ? "b" : "");
    canvas.setAttribute("aria-label", difference ? "The difference of A and B: black where they agree" : "A with B laid over it");
    const times = document.getElementById("frame-times");
    if (times) times.textContent = "A at " + l.a.currentTime.toFixed(2) + " s, B at " + l.b.currentTime.toFixed(2) + " s";
  }
  function openFrames() {
    const view = document.getElementById("frame-view");
    const l = line();
    if (!view || !l || view.open) return;
    l.a.pause();
    // both players seek to the moment (the same one again loads a frame a player only had the
    // metadata of); each "seeked" redraws
    const t = l.a.dataset.synced ? l.a.currentTime : l.startA;
    l.a.dataset.synced = "1";
    l.a.currentTime = t;
    const want = toB(l, t);
    if (inB(l, want)) l.b.currentTime = want;
    view.showModal();
    drawFrames();
  }
  document.addEventListener("input", function (event) {
    if (event.target.id === "frame-mix" || event.target.name === "frame-mode") drawFrames();
  });
  document.addEventListener("loadeddata", function () { if (frameViewOpen()) drawFrames(); }, true);

  // ---- the next pair, ahead: its keyframes (decoded by the server on their first request, the
  // slow part of a first view: <link rel=prefetch>) and the start of its files (their metadata and
  // first seconds, a Range fetch the players then read from the browser's cache). Started once this
  // pair's own keyframes in view and both players' metadata are in, so as not to slow them down.
  const PREFETCH_BYTES = 1024 * 1024;
  const prefetched = new Set();
  let waiting = null;
  function loaded(card) {
    const players = card.querySelectorAll("video");
    for (let i = 0; i < players.length; i++) if (players[i].readyState < 1) return false;
    const imgs = card.querySelectorAll(".strip img");
    for (let i = 0; i < imgs.length; i++) {
      const r = imgs[i].getBoundingClientRect();
      const inView = r.right > 0 && r.left < window.innerWidth && r.bottom > 0 && r.top < window.innerHeight;
      if (inView && !imgs[i].complete) return false;
    }
    return true;
  }
  function prefetchUpcoming() {
    const card = document.getElementById("pair-card");
    const upcoming = card && card.querySelector(".upcoming");
    if (!upcoming) return;
    if (waiting !== null) clearTimeout(waiting);
    const started = Date.now();
    (function attempt() {
      waiting = null;
      if (!upcoming.isConnected) return;  // swapped out meanwhile: the new card starts its own
      if (!loaded(card) && Date.now() - started < 5000) { waiting = setTimeout(attempt, 150); return; }
      (upcoming.dataset.frames || "").split(/\s+/).forEach(function (url) {
        if (!url || prefetched.has(url)) return;
        prefetched.add(url);
        const link = document.createElement("link");
        link.rel = "prefetch";
        link.as = "image";
        link.href = url;
        upcoming.appendChild(link);
      });
      if (!window.fetch) return;
      const shown = Array.prototype.map.call(card.querySelectorAll("video"), function (v) {
        return new URL(v.src, location.href).pathname;
      });
      (upcoming.dataset.media || "").split(/\s+/).forEach(function (url) {
        if (!url || prefetched.has(url) || shown.indexOf(url) >= 0) return;
        prefetched.add(url);
        const options = { credentials: "same-origin", headers: { Range: "bytes=0-" + (PREFETCH_BYTES - 1) }, priority: "low" };
        fetch(url, options).then(function (r) { return r.arrayBuffer(); }).catch(function () { prefetched.delete(url); });
      });
    })();
  }
  prefetchUpcoming();
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "pair-card") prefetchUpcoming();
  });

  document.addEventListener("change", function (event) {
    const radio = event.target;
    if (radio.name !== "canonical" || !radio.checked || !window.astradupAnnounce) return;
    window.astradupAnnounce((radio.dataset.key || "").toUpperCase() + " is the copy to keep when merging.");
  });

  document.addEventListener("click", function (event) {
    const el = event.target;
    if (!el || !el.closest) return;
    if (el.closest("#play-sync")) { playFromSegment(); return; }
    if (el.closest(".shortcuts-open")) { openHelp(); return; }
    if (el.closest(".frame-open")) { openFrames(); return; }
    const stepper = el.closest(".frame-step");
    if (stepper) { step(parseInt(stepper.dataset.step, 10)); return; }
    const thumb = el.closest(".strip .thumb[data-t]");
    if (thumb && line()) { event.preventDefault(); seekTo(thumb); }
  });

  // after each swap the next pair is read from the top (hx-swap "show:window:top" does the
  // decisions; this covers any other swap of the card)
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "pair-card") window.scrollTo(0, 0);
    stopFollowing();
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !shortcutsOn()) return;
    if (!document.getElementById("pair-card") || typing(event.target)) return;
    // f closes the frame view again, ←/→ step both players and the view follows; a key review.js
    // acted on (the f that opened it, this same event) is left alone
    if (frameViewOpen()) {
      if (event.defaultPrevented) return;
      if (event.key === "f") { event.preventDefault(); document.getElementById("frame-view").close(); return; }
      if (event.target.matches && event.target.matches("input[type=range]")) return;
      if (event.key === "ArrowRight" || event.key === "ArrowLeft") { event.preventDefault(); step(event.key === "ArrowRight" ? 1 : -1); }
      return;
    }
    if (document.getElementById("shortcuts-help") && document.getElementById("shortcuts-help").open) return;
    if (event.key === "?") { event.preventDefault(); openHelp(); return; }
    if (event.key === " ") { event.preventDefault(); toggle(); return; }
    if (event.target.matches && event.target.matches("input[type=range]")) return;
    if (event.key === "ArrowRight") { event.preventDefault(); step(1); return; }
    if (event.key === "ArrowLeft") { event.preventDefault(); step(-1); }
  });
})();
