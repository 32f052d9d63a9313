// Media page: copy buttons, a confirmation before deleting, and a note when the player cannot play.
"use strict";

(() => {
  const copyStatus = document.getElementById("copy-status");

  // ---------- copy buttons (shown only where the Clipboard API is available) ----------

  const canCopy =
    !!navigator.clipboard && typeof navigator.clipboard.writeText === "function" && window.isSecureContext;

  function textToCopy(target) {
    if (target instanceof HTMLAnchorElement) return target.href; // absolute, ready to paste
    return (target.textContent || "").trim();
  }

  function selectText(target) {
    const selection = window.getSelection ? window.getSelection() : null;
    if (!selection) return;
    const range = document.createRange();
    range.selectNodeContents(target);
    selection.removeAllRanges();
    selection.addRange(range);
  }

  for (const button of document.querySelectorAll(".copy-button[data-copy-target]")) {
    const target = document.getElementById(button.dataset.copyTarget);
    if (!target || !canCopy) continue;
    const label = button.textContent;
    let timer = 0;
    button.hidden = false;
    button.addEventListener("click", async () => {
      let message;
      try {
        await navigator.clipboard.writeText(textToCopy(target));
        button.textContent = "Copied";
        button.classList.add("is-copied");
        message = "Copied to the clipboard.";
      } catch (err) {
        // Permission refused: select the text so a keyboard copy still works.
        selectText(target);
        button.textContent = "Press Ctrl+C";
        message = "Could not copy automatically; the text is selected instead.";
      }
      if (copyStatus) copyStatus.textContent = message;
      window.clearTimeout(timer);
      timer = window.setTimeout(() => {
        button.textContent = label;
        button.classList.remove("is-copied");
      }, 2000);
    });
  }

  // ---------- delete confirmation ----------

  const deleteForm = document.getElementById("delete-form");
  if (deleteForm) {
    deleteForm.addEventListener("submit", (event) => {
      const question = deleteForm.dataset.confirm || "Delete this file? This cannot be undone.";
      if (!window.confirm(question)) event.preventDefault();
    });
  }

  // ---------- a format this browser cannot play ----------

  const player = document.getElementById("media-player");
  const playerError = document.getElementById("player-error");
  if (player && playerError) {
    const showError = () => {
      const error = player.error;
      // MEDIA_ERR_ABORTED means the user or the browser stopped loading: not worth a message.
      if (error && error.code !== 1) playerError.hidden = false;
    };
    player.addEventListener("error", showError);
    if (player.error) showError();
    // With <source> elements the errors are theirs: the last one failing means none played.
    const sources = player.querySelectorAll("source");
    if (sources.length) {
      sources[sources.length - 1].addEventListener("error", () => {
        if (player.networkState === HTMLMediaElement.NETWORK_NO_SOURCE) playerError.hidden = false;
      });
    }
  }
})();
