// Media page: adaptive streaming (HLS) for videos that have renditions, with a quality menu.
// hls.js (static/vendor/hls.js) feeds the <video> through Media Source Extensions; a browser
// without them but with native HLS (iOS Safari) gets the playlist as its src. Until the
// renditions exist the video plays its other sources; processing.js calls tryAdaptive() when
// processing ends, and playback moves to HLS where it is, without a reload.
"use strict";

(() => {
  const video = document.getElementById("media-player");
  if (!video || video.tagName !== "VIDEO") return;
  const quality = document.getElementById("quality");
  const select = document.getElementById("quality-select");
  let hls = null;

  const canUseHlsJs = () => typeof window.Hls === "function" && window.Hls.isSupported();
  const canPlayNatively = () => video.canPlayType("application/vnd.apple.mpegurl") !== "";

  // Where playback stands, to carry over to the adaptive stream.
  function position() {
    return { time: video.currentTime || 0, playing: !video.paused && !video.ended };
  }

  function resume(at) {
    if (at.time > 0) video.currentTime = at.time;
    if (at.playing) video.play().catch(() => {});
  }

  function levelName(level) {
    return level.height ? `${level.height}p` : `${Math.round(level.bitrate / 1000)} kbit/s`;
  }

  function buildMenu(levels) {
    if (!quality || !select || levels.length < 2) return;
    select.replaceChildren(new Option("Auto", "-1"));
    levels
      .map((level, index) => ({ level, index }))
      .sort((a, b) => (b.level.height || 0) - (a.level.height || 0))
      .forEach(({ level, index }) => select.add(new Option(levelName(level), String(index))));
    select.value = "-1";
    quality.hidden = false;
  }

  function showPlaying(levelIndex) {
    if (!hls || !select || hls.autoLevelEnabled === false) return;
    const level = hls.levels[levelIndex];
    if (level) select.options[0].textContent = `Auto (${levelName(level)})`;
    video.dataset.level = String(levelIndex);
  }

  function attach(url, at) {
    if (canUseHlsJs()) {
      const fallbackSrc = video.currentSrc || video.getAttribute("src") || "";
      // No worker: fMP4 segments need no transmuxing, and the page's policy allows no blob: scripts.
      // Capped to the player's size: a phone never fetches the 1080p rendition for a small view.
      hls = new window.Hls({ enableWorker: false, capLevelToPlayerSize: true });
      hls.on(window.Hls.Events.MANIFEST_PARSED, (_event, data) => {
        buildMenu(data.levels);
        resume(at);
      });
      hls.on(window.Hls.Events.LEVEL_SWITCHED, (_event, data) => showPlaying(data.level));
      hls.on(window.Hls.Events.ERROR, (_event, data) => {
        if (!data.fatal) return;
        // The adaptive stream is gone or broken: go back to the file the page named.
        const here = position();
        hls.destroy();
        hls = null;
        if (quality) quality.hidden = true;
        if (fallbackSrc) {
          video.src = fallbackSrc;
          video.addEventListener("loadedmetadata", () => resume(here), { once: true });
        }
      });
      video.removeAttribute("src");
      video.querySelectorAll("source").forEach((source) => source.remove());
      hls.loadSource(url);
      hls.attachMedia(video);
      video.dataset.adaptive = "hls.js";
      return true;
    }
    if (canPlayNatively()) {
      video.querySelectorAll("source").forEach((source) => source.remove());
      video.src = url;
      video.addEventListener("loadedmetadata", () => resume(at), { once: true });
      video.dataset.adaptive = "native";
      return true;
    }
    return false;
  }

  if (select) {
    select.addEventListener("change", () => {
      if (!hls) return;
      const index = Number(select.value);
      // -1 is Auto; a rendition switches at once (the buffer ahead is dropped).
      hls.currentLevel = index;
      if (index === -1) showPlaying(hls.currentLevel);
      else select.options[0].textContent = "Auto";
    });
  }

  window.streamportPlayer = {
    hls: () => hls,
    // Called when processing ends: start the adaptive stream if renditions were made.
    async tryAdaptive() {
      const url = video.dataset.hlsCandidate;
      if (hls || !url || video.dataset.adaptive) return false;
      let response;
      try {
        response = await fetch(url, { credentials: "same-origin", cache: "no-cache" });
      } catch (err) {
        return false;
      }
      if (!response.ok) return false;
      video.dataset.hlsUrl = url;
      return attach(url, position());
    },
  };

  if (video.dataset.hlsUrl) attach(video.dataset.hlsUrl, { time: 0, playing: false });
})();
