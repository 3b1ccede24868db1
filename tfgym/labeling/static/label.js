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

  const load = T.taskLoader("pair", "pair", showLease);

  function next() {
    lease = null;
    busy = true;
    return load();
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
    const payload = { pair_id: lease.pair_id, answer: word, lead_time_s: leadTime };
    const outcome = await T.postAnswer(payload, WORDS[word], "pair");
    if (outcome === "failed") {
      if (button) button.classList.remove("pressed");
      busy = false;
    } else {
      next();
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
