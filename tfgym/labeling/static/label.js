/* tfgym labeling: the pair page. */
"use strict";

(() => {
  const T = window.TFGYM;
  const task = T.$("task");
  const WORDS = { left: "left is better", right: "right is better", equal: "about equal",
                  skip: "can't tell (skipped)" };
  const KEYS = { ArrowLeft: "left", ArrowRight: "right", ArrowDown: "equal", e: "equal",
                 E: "equal", s: "skip", S: "skip", " ": "skip" };
  let lease = null;
  let shownAt = 0;
  let busy = true;
  let timer = null;

  function later(ms) {
    clearTimeout(timer);
    timer = setTimeout(next, ms);
  }

  async function next() {
    clearTimeout(timer);
    lease = null;
    busy = true;
    let r;
    try {
      r = await T.api("GET", `/api/next?kind=pair&labeler=${encodeURIComponent(T.name())}`);
    } catch (e) {
      T.toast("No connection to the server; retrying…", "error");
      later(T.pollMs);
      return;
    }
    if (r.status === 204) {
      T.show("empty");
      T.$("scene").textContent = "";
      T.refreshCounts();
      later(T.pollMs);
      return;
    }
    if (r.status !== 200) {
      T.toast(`Could not load a pair: ${T.detail(r)}`, "error");
      later(2 * T.pollMs);
      return;
    }
    await showLease(r.json);
  }

  async function showLease(data) {
    const cards = task.querySelectorAll(".item");
    const loads = data.items.map((item) => T.fillViews(cards[item.position], item.views));
    await Promise.all(loads);
    task.dataset.pairId = String(data.pair_id);
    T.$("scene").textContent = data.scene;
    T.show("task");
    task.querySelectorAll("button").forEach((b) => b.classList.remove("pressed"));
    lease = data;
    shownAt = performance.now();
    busy = false;
    T.refreshCounts();
  }

  async function answer(word) {
    if (!lease || busy) return;
    busy = true;
    const button = task.querySelector(`button[data-answer="${word}"]`);
    if (button) button.classList.add("pressed");
    const leadTime = Math.round(performance.now() - shownAt) / 1000;
    let r;
    try {
      r = await T.api("POST", "/api/answer", { pair_id: lease.pair_id, labeler: T.name(),
                                               answer: word, lead_time_s: leadTime });
    } catch (e) {
      T.toast("Not saved: no connection to the server. Answer again.", "error");
      if (button) button.classList.remove("pressed");
      busy = false;
      return;
    }
    if (r.status === 200) {
      T.toast(`✓ Saved: ${WORDS[word]}`, "ok");
      T.saved();
      next();
    } else if (r.status === 404 || r.status === 409) {
      T.toast(`Not saved: ${T.detail(r)}. Here is a fresh pair.`, "warn");
      next();
    } else {
      T.toast(`Not saved: ${T.detail(r)}`, "error");
      if (button) button.classList.remove("pressed");
      busy = false;
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.repeat || event.ctrlKey || event.metaKey || event.altKey || T.typing(event)) return;
    const word = KEYS[event.key];
    if (!word || task.hidden) return;
    event.preventDefault();
    answer(word);
  });
  task.querySelectorAll("button[data-answer]").forEach((b) => {
    b.addEventListener("click", () => answer(b.dataset.answer));
  });
  T.start(next);
})();
