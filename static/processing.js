// Media page: follow the background processing of this media through Server-Sent Events, and show
// the result (poster, details, player) by reloading the page once it is over.
// Without this script the panel shows the state of when the page was loaded.
"use strict";

(() => {
  const panel = document.getElementById("processing");
  const eventsUrl = panel ? panel.dataset.eventsUrl : "";
  if (!panel || !eventsUrl || typeof window.EventSource !== "function") return;

  const stepText = document.getElementById("processing-step");
  const progress = document.getElementById("processing-progress");
  const percent = document.getElementById("processing-percent");
  const hint = document.getElementById("processing-hint");

  const FINAL_STATES = new Set(["done", "failed", "skipped"]);
  // The same words as _media_format.html's processing_step_text.
  const STEP_TEXTS = {
    probing: "Reading media details…",
    poster: "Making a poster…",
    faststart: "Optimising for instant playback…",
    transcode: "Converting for browsers…",
    remux: "Repackaging for browsers…",
  };
  const FINAL_TEXTS = {
    done: "Ready",
    failed: "Processing failed",
    skipped: "Not processed",
  };
  // A page that still says "running" right after a reload for the same final state would reload
  // forever; one reload per this many milliseconds is enough.
  const RELOAD_GUARD_MS = 15000;
  const reloadKey = `streamport:processing-reload:${eventsUrl}`;

  // The page says "reload to see"; with live updates it does not need to.
  if (hint && hint.dataset.liveText) hint.textContent = hint.dataset.liveText;

  function describe(state, step) {
    if (state === "pending") return "Waiting to be processed";
    if (FINAL_STATES.has(state)) return FINAL_TEXTS[state];
    if (step.startsWith("renditions ")) {
      return `Making adaptive streams (${step.slice(11).split("+").join(", ")})…`;
    }
    return STEP_TEXTS[step] || "Processing…";
  }

  function show(data) {
    const state = String(data.state || "");
    const step = typeof data.step === "string" ? data.step : "";
    const fraction = Math.min(1, Math.max(0, Number(data.progress) || 0));
    const shown = state === "done" ? 1 : fraction;
    panel.dataset.state = state;
    panel.dataset.step = step;
    const text = describe(state, step);
    // Only a new step is announced (the step is a live region); the percentage is not.
    if (stepText && stepText.textContent !== text) stepText.textContent = text;
    if (progress) {
      progress.value = shown;
      progress.textContent = `${Math.floor(shown * 100)} %`;
    }
    if (percent) percent.textContent = `${Math.floor(shown * 100)} %`;
  }

  function readStorage(key) {
    try {
      return window.sessionStorage.getItem(key);
    } catch (err) {
      return null; // storage disabled
    }
  }

  function writeStorage(key, value) {
    try {
      window.sessionStorage.setItem(key, value);
    } catch (err) {
      // storage disabled or full: the guard is only a safety net
    }
  }

  // Reloading would stop a playing video or lose a title being typed: ask instead.
  function userIsBusy() {
    const player = document.getElementById("media-player");
    if (player && !player.paused && !player.ended) return true;
    const title = document.getElementById("rename-title");
    return !!title && title.value !== title.defaultValue;
  }

  function offerReload(message) {
    if (!hint) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button--small processing__reload";
    button.id = "processing-reload";
    button.textContent = "Reload the page";
    button.addEventListener("click", () => window.location.reload());
    hint.replaceChildren(`${message} `, button);
  }

  function finish(state) {
    panel.classList.add("is-finished");
    const last = Number(readStorage(reloadKey)) || 0;
    if (Date.now() - last < RELOAD_GUARD_MS) {
      offerReload("Processing is over.");
      return;
    }
    if (userIsBusy()) {
      offerReload(state === "done" ? "Processing is over: reload to see the result." : "Processing is over.");
      // Renditions made meanwhile: playback moves to the adaptive stream where it is.
      if (state === "done" && window.streamportPlayer) window.streamportPlayer.tryAdaptive();
      return;
    }
    writeStorage(reloadKey, String(Date.now()));
    window.location.reload();
  }

  let source;
  try {
    source = new EventSource(eventsUrl);
  } catch (err) {
    return; // a URL the browser refuses: keep the state the page was rendered with
  }

  source.addEventListener("processing", (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (err) {
      return;
    }
    if (!data || typeof data !== "object") return;
    show(data);
    if (FINAL_STATES.has(data.state)) {
      // The server closes the stream after the final event; EventSource would reconnect.
      source.close();
      finish(data.state);
    }
  });

  // Network errors are retried by EventSource itself; a refused stream (an HTTP error) is final.
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED && !panel.classList.contains("is-finished")) {
      panel.classList.add("is-offline");
      if (hint) hint.textContent = "Live updates stopped. Reload the page to see the current state.";
    }
  });

  // Leaving closes the stream; coming back through the back/forward cache needs a fresh state.
  window.addEventListener("pagehide", () => source.close());
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && !panel.classList.contains("is-finished")) window.location.reload();
  });
})();
