/* tfgym labeling: the ranking page (four renderings, best to worst). */
"use strict";

(() => {
  const T = window.TFGYM;
  const task = T.$("task");
  const cards = Array.from(task.querySelectorAll(".item"));
  const ORDINALS = ["best", "2nd", "3rd", "worst"];
  let lease = null;
  let order = [];
  let shownAt = 0;
  let busy = true;
  let timer = null;

  function later(ms) {
    clearTimeout(timer);
    timer = setTimeout(next, ms);
  }

  function draw() {
    cards.forEach((card, position) => {
      const rank = order.indexOf(position);
      card.classList.toggle("picked", rank >= 0);
      card.querySelector(".rank-badge").textContent = rank >= 0 ? ORDINALS[rank] : "";
    });
    T.$("save").disabled = order.length !== cards.length;
    task.dataset.order = order.join(",");
  }

  function pick(position) {
    if (!lease || busy || position >= lease.items.length || order.includes(position)) return;
    order.push(position);
    if (order.length === lease.items.length - 1) {  // the last one is the worst
      order.push(lease.items.map((it) => it.position).find((p) => !order.includes(p)));
    }
    draw();
  }

  function undo() {
    if (busy) return;
    if (order.length === cards.length) order.pop();  // the automatic last place
    order.pop();
    draw();
  }

  async function next() {
    clearTimeout(timer);
    lease = null;
    busy = true;
    let r;
    try {
      r = await T.api("GET", `/api/next?kind=rank&labeler=${encodeURIComponent(T.name())}`);
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
      T.toast(`Could not load a ranking: ${T.detail(r)}`, "error");
      later(2 * T.pollMs);
      return;
    }
    const data = r.json;
    await Promise.all(data.items.map((item) => T.fillViews(cards[item.position], item.views)));
    task.dataset.pairId = String(data.pair_id);
    T.$("scene").textContent = data.scene;
    order = [];
    draw();
    T.show("task");
    lease = data;
    shownAt = performance.now();
    busy = false;
    T.refreshCounts();
  }

  async function send(payload, message) {  // payload: {order} or {answer: "skip"}
    if (!lease || busy) return;
    busy = true;
    const leadTime = Math.round(performance.now() - shownAt) / 1000;
    let r;
    try {
      r = await T.api("POST", "/api/answer", { pair_id: lease.pair_id, labeler: T.name(),
                                               lead_time_s: leadTime, ...payload });
    } catch (e) {
      T.toast("Not saved: no connection to the server. Try again.", "error");
      busy = false;
      return;
    }
    if (r.status === 200) {
      T.toast(`✓ Saved: ${message}`, "ok");
      T.saved();
      next();
    } else if (r.status === 404 || r.status === 409) {
      T.toast(`Not saved: ${T.detail(r)}. Here is a fresh ranking.`, "warn");
      next();
    } else {
      T.toast(`Not saved: ${T.detail(r)}`, "error");
      busy = false;
    }
  }

  function skip() {
    if (lease) send({ answer: "skip" }, "can't tell");
  }

  function save() {
    if (lease && order.length === lease.items.length) send({ order }, "order");
  }

  document.addEventListener("keydown", (event) => {
    if (event.repeat || event.ctrlKey || event.metaKey || event.altKey || T.typing(event)) return;
    if (task.hidden) return;
    const digit = Number(event.key);
    if (Number.isInteger(digit) && digit >= 1 && digit <= cards.length) pick(digit - 1);
    else if (event.key === "Backspace") undo();
    else if (event.key === "Enter") save();
    else if (event.key === "s" || event.key === "S") skip();
    else return;
    event.preventDefault();
  });
  cards.forEach((card, position) => card.addEventListener("click", () => pick(position)));
  T.$("undo").addEventListener("click", undo);
  T.$("save").addEventListener("click", save);
  T.$("skip").addEventListener("click", skip);
  T.start(next);
})();
