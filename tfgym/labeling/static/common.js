/* tfgym labeling: what the pair and ranking pages share (labeler name, API calls, toasts). */
"use strict";

window.TFGYM = (() => {
  const NAME_RE = /^[A-Za-z0-9_.:@-]{1,64}$/;
  const STORE_KEY = "tfgym.labeler";
  const body = document.body;
  const pollMs = Number(body.dataset.pollMs) || 3000;
  const $ = (id) => document.getElementById(id);
  let name = null;
  let done = null;
  let toastTimer = null;

  function storedName() {
    try { return localStorage.getItem(STORE_KEY); } catch (e) { return null; }
  }

  function keepName(value) {
    name = value;
    try { localStorage.setItem(STORE_KEY, value); } catch (e) { /* private mode */ }
    $("who").textContent = value;
  }

  /* The labeler: ?labeler=NAME, else the name kept in localStorage, else ask once. */
  function identify(onReady) {
    const fromUrl = new URLSearchParams(location.search).get("labeler");
    const known = [fromUrl, storedName()].find((v) => v && NAME_RE.test(v));
    $("who").addEventListener("click", () => ask(() => location.reload()));
    if (known) { keepName(known); onReady(); } else { ask(onReady); }
  }

  function ask(onReady) {
    const overlay = $("identify"), input = $("identify-name"), hint = $("identify-hint");
    overlay.hidden = false;
    input.value = name || "";
    input.focus();
    $("identify-form").onsubmit = (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!NAME_RE.test(value)) {
        hint.classList.add("bad");
        input.focus();
        return;
      }
      overlay.hidden = true;
      const url = new URL(location.href);
      if (url.searchParams.has("labeler")) {
        url.searchParams.set("labeler", value);
        history.replaceState(null, "", url);
      }
      keepName(value);
      onReady();
    };
  }

  async function api(method, path, data) {
    const init = { method, headers: { Accept: "application/json" }, cache: "no-store",
                   credentials: "same-origin" };
    if (data !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(data);
    }
    const response = await fetch(path, init);
    let json = null;
    if (response.status !== 204) {
      try { json = await response.json(); } catch (e) { json = null; }
    }
    return { status: response.status, json };
  }

  function detail(result) {
    const d = result.json && result.json.detail;
    return typeof d === "string" ? d : `HTTP ${result.status}`;
  }

  /* A short message at the bottom of the page; kind: "ok", "warn" or "error". */
  function toast(text, kind = "ok") {
    const el = $("toast");
    el.textContent = text;
    el.className = `toast show ${kind}`;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.className = `toast ${kind}`; }, kind === "ok" ? 1600 : 4000);
  }

  function showCounts(counts) {
    if (counts && counts.waiting !== undefined) $("waiting").textContent = counts.waiting;
  }

  async function refreshCounts() {
    try {
      const r = await api("GET", "/api/counts");
      if (r.status === 200) showCounts(r.json);
    } catch (e) { /* the next poll tries again */ }
  }

  /* This labeler's answers so far (from /api/stats once; then counted here). */
  async function loadDone() {
    try {
      const r = await api("GET", "/api/stats");
      if (r.status !== 200) return;
      const mine = (r.json.labelers || {})[name] || {};
      done = (mine.answers || 0) + (done || 0);
      $("done").textContent = done;
      showCounts(r.json.counts || r.json);
    } catch (e) { /* counts are a courtesy */ }
  }

  function saved() {
    done = (done || 0) + 1;
    $("done").textContent = done;
    body.dataset.saved = String(Number(body.dataset.saved) + 1);
    refreshCounts();
  }

  /* Show one of the page's states: "loading", "empty" or "task". */
  function show(state) {
    for (const id of ["loading", "empty", "task"]) $(id).hidden = id !== state;
    body.dataset.state = state;
  }

  const VIEW_ORDER = ["front", "side", "top", "back"];

  /* Fill an item card with one figure per view; resolves when every image is decoded. */
  function fillViews(card, views) {
    const box = card.querySelector(".views");
    box.replaceChildren();
    const names = Object.keys(views).sort((a, b) => {
      const ia = VIEW_ORDER.indexOf(a), ib = VIEW_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    const loads = names.map((view) => {
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.alt = `${view} view`;
      img.dataset.view = view;
      img.src = views[view];
      const caption = document.createElement("figcaption");
      caption.textContent = view;
      figure.append(img, caption);
      box.append(figure);
      return img.decode().catch(() => { figure.classList.add("broken"); });
    });
    return Promise.all(loads);
  }

  function typing(event) {
    const t = event.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable);
  }

  /* The task loader of a page: next() asks for this labeler's next task of `kind` and hands
     it to onLease, or shows the waiting state and asks again every pollMs. */
  function taskLoader(kind, what, onLease) {
    let timer = null;
    const later = (ms) => { clearTimeout(timer); timer = setTimeout(next, ms); };
    async function next() {
      clearTimeout(timer);
      let r;
      try {
        r = await api("GET", `/api/next?kind=${kind}&labeler=${encodeURIComponent(name)}`);
      } catch (e) {
        toast("No connection to the server; retrying…", "error");
        later(pollMs);
        return;
      }
      if (r.status === 204) {
        show("empty");
        $("scene").textContent = "";
        refreshCounts();
        later(pollMs);
        return;
      }
      if (r.status !== 200) {
        toast(`Could not load a ${what}: ${detail(r)}`, "error");
        later(2 * pollMs);
        return;
      }
      await onLease(r.json);
    }
    return next;
  }

  /* Post an answer; resolves to "saved", "stale" (gone or not ours: load a fresh task) or
     "failed" (not saved: the labeler may answer again). */
  async function postAnswer(payload, message, what) {
    let r;
    try {
      r = await api("POST", "/api/answer", { labeler: name, ...payload });
    } catch (e) {
      toast("Not saved: no connection to the server. Answer again.", "error");
      return "failed";
    }
    if (r.status === 200) {
      toast(`✓ Saved: ${message}`, "ok");
      saved();
      return "saved";
    }
    if (r.status === 404 || r.status === 409) {
      toast(`Not saved: ${detail(r)}. Here is a fresh ${what}.`, "warn");
      return "stale";
    }
    toast(`Not saved: ${detail(r)}`, "error");
    return "failed";
  }

  /* Ask for the labeler, then run start(); keep counts fresh. */
  function start(run) {
    identify(() => { loadDone(); run(); });
  }

  return { $, api, detail, toast, show, fillViews, saved, refreshCounts, typing, start,
           taskLoader, postAnswer, pollMs, name: () => name };
})();
