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

  async function showLease(data) {
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

  const load = T.taskLoader("rank", "ranking", showLease);

  function next() {
    lease = null;
    busy = true;
    return load();
  }

  async function send(payload, message) {  // payload: {order} or {answer: "skip"}
    if (!lease || busy) return;
    busy = true;
    const leadTime = Math.round(performance.now() - shownAt) / 1000;
    const outcome = await T.postAnswer({ pair_id: lease.pair_id, lead_time_s: leadTime,
                                         ...payload }, message, "ranking");
    if (outcome === "failed") busy = false;
    else next();
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
