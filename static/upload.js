// Upload page: drag and drop, a row per file, and one XMLHttpRequest per file with progress.
// Without this script the form posts to /upload as a plain multipart form.
"use strict";

(() => {
  const form = document.getElementById("upload-form");
  const input = document.getElementById("file-input");
  if (!form || !input || typeof XMLHttpRequest === "undefined" || typeof FormData === "undefined") {
    return;
  }

  const dropZone = document.getElementById("drop-zone");
  const list = document.getElementById("upload-list");
  const submitButton = document.getElementById("upload-submit");
  const summary = document.getElementById("upload-summary");
  const serverError = document.getElementById("upload-error");
  const titleInput = form.elements.namedItem("title");

  const MAX_PARALLEL = 2;
  const maxBytes = Number(form.dataset.maxUploadBytes) || Infinity;
  const apiUrl = form.dataset.apiUrl || "/api/media";
  const visibilityInput = form.elements.namedItem("visibility");
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = csrfMeta ? csrfMeta.getAttribute("content") || "" : "";
  const catalogUrl = form.dataset.catalogUrl || "/";
  const submitLabel = submitButton ? submitButton.textContent : "Upload";

  /** @type {{file: File, row: HTMLLIElement, state: string, media: any}[]} */
  let entries = [];
  let uploading = false;

  form.classList.add("is-enhanced");
  // Validation happens here, so that a refused or empty choice gets a message of ours.
  form.noValidate = true;

  // ---------- helpers ----------

  function humanSize(bytes) {
    const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if (!Number.isFinite(bytes)) return "unlimited";
    if (bytes < 1024) return `${bytes} B`;
    let value = bytes;
    let unit = -1;
    do {
      value /= 1024;
      unit += 1;
    } while (value >= 1024 && unit < units.length - 1);
    return `${value.toFixed(1)} ${units[unit]}`;
  }

  function fileKey(file) {
    return `${file.name}\u0000${file.size}\u0000${file.lastModified}`;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setSummary(text, { error = false, links = [] } = {}) {
    if (!summary) return;
    summary.replaceChildren();
    summary.classList.toggle("is-error", error);
    if (text) summary.append(text);
    if (links.length) {
      const ul = element("ul", "upload-summary__links");
      for (const { href, label } of links) {
        const li = element("li");
        const a = element("a", "", label);
        a.href = href;
        li.append(a);
        ul.append(li);
      }
      summary.append(ul);
    }
  }

  // Keep the native input's FileList equal to the chosen files, so the plain form posts them too.
  function syncInput() {
    if (typeof DataTransfer === "undefined") return;
    try {
      const transfer = new DataTransfer();
      for (const entry of entries) transfer.items.add(entry.file);
      input.files = transfer.files;
    } catch (err) {
      // Older browsers cannot build a FileList; the list kept here is what gets uploaded.
    }
  }

  // ---------- rows ----------

  function setState(entry, state, statusText, fraction) {
    entry.state = state;
    entry.row.dataset.state = state;
    entry.status.textContent = statusText;
    if (typeof fraction === "number") {
      entry.progress.value = Math.max(0, Math.min(1, fraction));
    }
    entry.remove.hidden = uploading || state === "done";
  }

  function buildRow(entry) {
    const { file } = entry;
    const row = element("li", "upload-item");

    const head = element("div", "upload-item__head");
    const name = element("span", "upload-item__name", file.name);
    const size = element("span", "upload-item__size", humanSize(file.size));
    const remove = element("button", "upload-item__remove", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", `Remove ${file.name}`);
    remove.addEventListener("click", () => removeEntry(entry));
    head.append(name, size, remove);

    const progressRow = element("div", "upload-item__progress-row");
    const progress = element("progress", "upload-progress");
    progress.max = 1;
    progress.value = 0;
    progress.setAttribute("aria-label", `Upload progress of ${file.name}`);
    const status = element("span", "upload-status");
    progressRow.append(progress, status);

    row.append(head, progressRow);
    Object.assign(entry, { row, name, progress, status, remove });
    return row;
  }

  function addFiles(files) {
    if (uploading) return;
    const known = new Set(entries.map((entry) => fileKey(entry.file)));
    for (const file of files) {
      if (known.has(fileKey(file))) continue;
      known.add(fileKey(file));
      const entry = { file, state: "waiting", media: null };
      list.append(buildRow(entry));
      entries.push(entry);
      if (file.size > maxBytes) {
        setState(
          entry,
          "refused",
          `Too large: ${humanSize(file.size)} is over the ${humanSize(maxBytes)} limit, so it will not be sent.`,
          0,
        );
      } else {
        setState(entry, "waiting", "Waiting", 0);
      }
    }
    list.hidden = entries.length === 0;
    syncInput();
    setSummary("");
  }

  function removeEntry(entry) {
    if (uploading) return;
    entries = entries.filter((other) => other !== entry);
    entry.row.remove();
    list.hidden = entries.length === 0;
    syncInput();
    setSummary("");
  }

  // ---------- choosing and dropping ----------

  input.addEventListener("change", () => {
    // The picker replaces the input's list; keep what was chosen before and add the new files.
    addFiles(Array.from(input.files || []));
  });

  function hasFiles(event) {
    const types = event.dataTransfer ? event.dataTransfer.types : null;
    return !!types && Array.from(types).includes("Files");
  }

  function droppedFiles(transfer) {
    const files = [];
    let skippedFolders = 0;
    const items = transfer.items ? Array.from(transfer.items) : [];
    if (items.length && typeof items[0].webkitGetAsEntry === "function") {
      for (const item of items) {
        if (item.kind !== "file") continue;
        const fsEntry = item.webkitGetAsEntry();
        if (fsEntry && fsEntry.isDirectory) {
          skippedFolders += 1;
          continue;
        }
        const file = item.getAsFile();
        if (file) files.push(file);
      }
    } else {
      files.push(...Array.from(transfer.files || []));
    }
    return { files, skippedFolders };
  }

  if (dropZone) {
    let depth = 0;
    const clear = () => {
      depth = 0;
      dropZone.classList.remove("is-dragover");
    };
    dropZone.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth += 1;
      if (!uploading) dropZone.classList.add("is-dragover");
    });
    dropZone.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = uploading ? "none" : "copy";
    });
    dropZone.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) dropZone.classList.remove("is-dragover");
    });
    dropZone.addEventListener("drop", (event) => {
      if (!event.dataTransfer) return;
      event.preventDefault();
      clear();
      if (uploading) return;
      const { files, skippedFolders } = droppedFiles(event.dataTransfer);
      addFiles(files);
      if (skippedFolders) {
        setSummary(
          `${skippedFolders === 1 ? "A folder was" : `${skippedFolders} folders were`} skipped: drop the files inside it instead.`,
          { error: true },
        );
      }
    });
    window.addEventListener("dragend", clear);
  }

  // A file dropped beside the zone must not make the browser leave the page.
  window.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  window.addEventListener("drop", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });

  // ---------- uploading ----------

  function errorDetail(xhr) {
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && typeof body.detail === "string" && body.detail) return body.detail;
      if (body && Array.isArray(body.detail) && body.detail.length) {
        return body.detail.map((d) => (d && d.msg) || String(d)).join("; ");
      }
    } catch (err) {
      // Not JSON (a proxy's error page, for instance): fall back to the status line.
    }
    return `${xhr.status} ${xhr.statusText || "error"}`.trim();
  }

  function uploadOne(entry, title) {
    const visibility = visibilityInput && "value" in visibilityInput ? visibilityInput.value : "";
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      const data = new FormData();
      if (title) data.append("title", title);
      if (visibility) data.append("visibility", visibility);
      data.append("file", entry.file, entry.file.name);

      const fail = (detail) => {
        setState(entry, "failed", `Failed: ${detail}`);
        resolve();
      };

      xhr.open("POST", apiUrl);
      xhr.setRequestHeader("Accept", "application/json");
      // The session cookie alone changes nothing: the page's token proves the page is ours.
      xhr.setRequestHeader("X-CSRF-Token", csrfToken);
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable || !event.total) return;
        const fraction = event.loaded / event.total;
        setState(entry, "uploading", `Uploading ${Math.floor(fraction * 100)} %`, fraction);
      });
      xhr.upload.addEventListener("load", () => {
        // Every byte is sent; the server is still writing and checking the file.
        setState(entry, "processing", "Uploading 100 % · processing…", 1);
      });
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          let media = null;
          try {
            const body = JSON.parse(xhr.responseText);
            media = body && Array.isArray(body.items) ? body.items[0] : body;
          } catch (err) {
            media = null;
          }
          entry.media = media;
          setState(entry, "done", "Done", 1);
          if (media && media.page_url) {
            const link = element("a", "upload-item__link", entry.file.name);
            link.href = media.page_url;
            entry.name.replaceChildren(link);
          }
          resolve();
        } else {
          fail(errorDetail(xhr));
        }
      });
      xhr.addEventListener("error", () => fail("connection lost"));
      xhr.addEventListener("timeout", () => fail("connection lost"));
      xhr.addEventListener("abort", () => fail("cancelled"));

      setState(entry, "uploading", "Uploading 0 %", 0);
      xhr.send(data);
    });
  }

  // The same rule as the server's for one form with several files: a shared title becomes a
  // prefix, so the titles stay distinct.
  function titleFor(entry, title, count) {
    if (!title || count < 2) return title;
    const name = entry.file.name;
    const dot = name.lastIndexOf(".");
    return `${title} — ${dot > 0 ? name.slice(0, dot) : name}`.slice(0, 500);
  }

  async function runQueue(queue, title, count) {
    let next = 0;
    const worker = async () => {
      while (next < queue.length) {
        const entry = queue[next];
        next += 1;
        await uploadOne(entry, titleFor(entry, title, count));
      }
    };
    const workers = [];
    for (let i = 0; i < Math.min(MAX_PARALLEL, queue.length); i += 1) workers.push(worker());
    await Promise.all(workers);
  }

  function setBusy(busy) {
    uploading = busy;
    if (submitButton) {
      submitButton.disabled = busy;
      submitButton.textContent = busy ? "Uploading…" : submitLabel;
    }
    input.disabled = busy;
    if (dropZone) dropZone.classList.toggle("is-disabled", busy);
    for (const entry of entries) entry.remove.hidden = busy || entry.state === "done";
  }

  function finish() {
    const done = entries.filter((entry) => entry.state === "done");
    const failed = entries.filter((entry) => entry.state === "failed" || entry.state === "refused");

    if (failed.length === 0 && done.length > 0) {
      const only = done.length === 1 ? done[0].media : null;
      const target = only && only.page_url ? only.page_url : catalogUrl;
      setSummary(done.length === 1 ? "Uploaded. Opening it…" : `All ${done.length} files uploaded. Opening the catalog…`);
      window.location.assign(target);
      return;
    }

    const names = failed.map((entry) => entry.file.name).join(", ");
    const links = done
      .filter((entry) => entry.media && entry.media.page_url)
      .map((entry) => ({ href: entry.media.page_url, label: entry.media.title || entry.file.name }));
    const head =
      done.length === 0
        ? `Nothing was uploaded. Failed: ${names}.`
        : `${done.length} of ${done.length + failed.length} files uploaded. Failed: ${names}. Uploaded:`;
    setSummary(head, { error: true, links });
    if (submitButton && failed.some((entry) => entry.state === "failed")) {
      submitButton.textContent = "Retry failed uploads";
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (uploading) return;

    // A retry sends what failed before; files already stored are not sent twice.
    const queue = entries.filter((entry) => entry.state === "waiting" || entry.state === "failed");
    if (queue.length === 0) {
      const refused = entries.some((entry) => entry.state === "refused");
      setSummary(
        refused
          ? `Nothing to send: every chosen file is over the ${humanSize(maxBytes)} limit.`
          : entries.length
            ? "These files are uploaded already."
            : "Choose at least one file first.",
        { error: true },
      );
      if (!entries.length) input.focus();
      return;
    }
    if (serverError) serverError.hidden = true;

    const title = titleInput && "value" in titleInput ? titleInput.value.trim() : "";
    for (const entry of queue) setState(entry, "waiting", "Waiting", 0);
    setBusy(true);
    setSummary(`Uploading ${queue.length} ${queue.length === 1 ? "file" : "files"}…`);
    try {
      await runQueue(queue, title, entries.length);
    } finally {
      setBusy(false);
    }
    finish();
  });

  window.addEventListener("beforeunload", (event) => {
    if (!uploading) return;
    event.preventDefault();
    // Older browsers show the prompt only when returnValue is set.
    event.returnValue = "";
  });

  // A browser may restore earlier choices on back/forward: show them as rows.
  if (input.files && input.files.length) addFiles(Array.from(input.files));
})();
