// The dashboard's view: renders the state of state.js into dashboard.html and turns the
// user's input into its actions. Native controls only, so every part works by keyboard.

import { seriesChart, summarise } from "./chart.js";
import { bucketLabel, count, dateSpan, duration, percent, rangeOf, zoneNames } from "./format.js";

const $ = (id) => document.getElementById(id);
const PER = { HOUR: "hour", DAY: "day", WEEK: "week" };
const FILTER_FIELDS = {
  kpiId: "kpi",
  fromDate: "from-date",
  toDate: "to-date",
  interval: "interval",
  timeZone: "time-zone",
};

function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === true) node.setAttribute(name, "");
    else if (value !== false && value != null) node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

function setFieldError(field, message) {
  const error = $(`${field.id}-error`);
  if (message) field.setAttribute("aria-invalid", "true");
  else field.removeAttribute("aria-invalid");
  if (error) {
    error.textContent = message ?? "";
    error.hidden = !message;
    if (message) {
      field.setAttribute("aria-describedby", error.id);
    } else if (field.getAttribute("aria-describedby") === error.id) {
      field.removeAttribute("aria-describedby");
    }
  }
}

export function mountDashboard(dashboard) {
  const view = { kpisBuilt: false, zonesBuilt: false, last: {} };
  const signInForm = $("sign-in-form");
  const userField = $("sign-in-user");
  const roleField = $("sign-in-role");

  signInForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    setFieldError(userField, null);
    setFieldError(roleField, null);
    const problem = await dashboard.signIn(userField.value, roleField.value);
    if (problem) {
      const field = problem.field === "role" ? roleField : userField;
      setFieldError(field, problem.message);
      field.focus();
    } else if (dashboard.state.auth === "signedIn" && dashboard.state.access !== "forbidden") {
      $("kpi").focus();
    }
  });
  $("sign-out").addEventListener("click", async () => {
    await dashboard.signOut();
    if (!signInForm.hidden) userField.focus();
  });
  $("retry").addEventListener("click", () => dashboard.retry());
  for (const panel of ["series", "funnel", "failures"]) {
    $(`${panel}-retry`).addEventListener("click", () => dashboard.retryPanel(panel));
  }

  const filters = $("filters");
  filters.addEventListener("change", (event) => {
    const name = event.target.name;
    if (name in FILTER_FIELDS) dashboard.setFilter(name, event.target.value);
  });
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    dashboard.refresh();
  });

  // Redraw the chart at its new width (phone turned, window resized).
  let pending = 0;
  new ResizeObserver(() => {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => {
      const box = $("series-chart");
      if (box.clientWidth && String(box.clientWidth) !== box.dataset.width) {
        drawSeries(dashboard.state.series);
      }
    });
  }).observe($("series-chart"));

  dashboard.addEventListener("change", () => {
    const { state } = dashboard;
    const hadFocus = document.activeElement;
    document.querySelector("main").setAttribute("aria-busy", String(state.phase === "loading"));
    renderSession(state);
    renderFilters(state, view);
    for (const [key, render] of [
      ["notice", renderNotice],
      ["series", renderSeries],
      ["funnel", renderFunnel],
      ["failures", renderFailures],
      ["announcement", renderAnnouncement],
    ]) {
      if (state[key] !== view.last[key]) {
        view.last[key] = state[key];
        render(state);
      }
    }
    // Keyboard users keep a place when the part they were in goes away (session expired).
    if (hadFocus?.closest("[hidden]") && !signInForm.hidden) userField.focus();
  });
}

function renderSession(state) {
  const signedIn = state.auth === "signedIn";
  $("session-bar").hidden = !signedIn;
  $("session-user").textContent = state.userId ?? "";
  $("session-roles").textContent = signedIn ? `(${state.roles.join(", ") || "no role"})` : "";
  $("sign-out").hidden = state.hostManaged;
  const signedOut =
    state.phase === "ready" && (state.auth === "signedOut" || state.auth === "expired");
  $("sign-in").hidden = !signedOut;
  $("sign-in-form").hidden = !state.devSignIn;
  $("host-sign-in").hidden = state.devSignIn;
  $("dashboard").hidden = !(signedIn && state.access !== "forbidden");
}

function renderNotice({ notice }) {
  $("alert").textContent = notice?.text ?? "";
  $("retry").hidden = !notice?.retry;
}

function renderAnnouncement({ announcement }) {
  $("status").textContent = announcement;
}

function renderFilters(state, view) {
  const kpi = $("kpi");
  if (!view.kpisBuilt && state.kpis.length) {
    kpi.replaceChildren(
      ...state.kpis.map((k) => h("option", { value: k.id }, `${k.name} · ${k.kind}`)),
    );
    view.kpisBuilt = true;
  }
  const zone = $("time-zone");
  if (!view.zonesBuilt) {
    zone.replaceChildren(
      ...zoneNames(state.filters.timeZone).map((z) => h("option", { value: z }, z)),
    );
    view.zonesBuilt = true;
  }
  for (const [name, id] of Object.entries(FILTER_FIELDS)) {
    const field = $(id);
    const value = state.filters[name] ?? "";
    if (field.value !== value && document.activeElement !== field) field.value = value;
    if (name !== "kpiId" && name !== "interval") setFieldError(field, state.filterErrors[name]);
  }
  const chosen = state.kpis.find((k) => k.id === state.filters.kpiId);
  $("kpi-description").textContent = chosen
    ? `${chosen.kind === "LEADING" ? "Leading" : "Lagging"} KPI: ${chosen.description} ` +
      `Counted at step ${chosen.steps.join(", ")}.`
    : "";
}

function panelStatus(panel, { status, text }) {
  const section = $(`${panel}-panel`);
  section.setAttribute("aria-busy", String(status === "loading"));
  section.dataset.status = status;
  const error = $(`${panel}-error`);
  error.textContent = status === "error" ? text : "";
  error.hidden = status !== "error";
  $(`${panel}-retry`).hidden = status !== "error";
}

function renderSeries({ series }) {
  panelStatus("series", series);
  drawSeries(series);
}

function drawSeries(series) {
  if (series.status === "loading" && !series.data) {
    $("series-chart").replaceChildren(h("p", { class: "placeholder" }, "Loading the chart…"));
    return;
  }
  if (!series.data || series.status === "forbidden") {
    if (series.status !== "error") $("series-chart").replaceChildren();
    $("series-totals").textContent = "";
    $("series-table").replaceChildren();
    return;
  }
  const { data, kpi, fromDate, toDate } = series;
  const title = `${kpi.name} per ${PER[data.interval]}`;
  const span = dateSpan(fromDate, toDate);
  $("series-title").textContent = title;
  const totals = [count(data.totalEvents, "event"), count(data.totalUniqueUsers, "unique user")];
  $("series-totals").textContent = `${totals.join(" · ")} · ${span} (${data.timeZone})`;
  const chart = seriesChart(data, {
    title,
    description: summarise(data, kpi.name, span),
    range: rangeOf(fromDate, toDate, data.timeZone),
    width: $("series-chart").clientWidth,
    idPrefix: "series-chart",
  });
  $("series-chart").replaceChildren(chart);
  $("series-chart").dataset.width = $("series-chart").clientWidth;
  $("series-table").replaceChildren(seriesTable(data, title));
}

function seriesTable({ buckets, interval, timeZone }, title) {
  return h(
    "table",
    {},
    h("caption", {}, `${title} (${timeZone})`),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, PER[interval][0].toUpperCase() + PER[interval].slice(1)),
        h("th", { scope: "col" }, "Events"),
        h("th", { scope: "col" }, "Unique users"),
      ),
    ),
    h(
      "tbody",
      {},
      ...buckets.map((b) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, bucketLabel(b.start, b.end, interval, timeZone)),
          h("td", {}, String(b.events)),
          h("td", {}, String(b.uniqueUsers)),
        ),
      ),
    ),
  );
}

function renderFunnel({ funnel }) {
  panelStatus("funnel", funnel);
  const list = $("funnel-steps");
  if (funnel.status === "loading" && !funnel.data) {
    list.replaceChildren(h("li", { class: "placeholder" }, "Loading the funnel…"));
    return;
  }
  if (!funnel.data || funnel.status === "forbidden") {
    if (funnel.status !== "error") list.replaceChildren();
    $("funnel-cohort").textContent = "";
    return;
  }
  const { data, fromDate, toDate, timeZone } = funnel;
  const started = data.steps[0]?.users ?? 0;
  const span = `${dateSpan(fromDate, toDate)} (${timeZone})`;
  $("funnel-cohort").textContent = started
    ? `${count(started, "user")} completed step 1 in ${span}; later steps count within ` +
      `${count(data.conversionWindowDays, "day")} of step 1.`
    : `No user completed step 1 in ${span}.`;
  list.replaceChildren(...data.steps.map((step, i) => funnelStep(step, data.steps[i - 1])));
}

function funnelStep(step, previous) {
  const share = step.conversionFromStart ?? 0;
  const details = [];
  if (previous) {
    details.push(`${percent(step.conversionFromStart)} of step 1`);
    if (previous.step !== 1) {
      details.push(`${percent(step.conversionFromPrevious)} of step ${previous.step}`);
    }
    const median = duration(step.medianSecondsFromPrevious);
    details.push(median ? `median ${median} after step ${previous.step}` : "no median yet");
  } else {
    details.push(step.users ? "cohort start, 100%" : "cohort start");
  }
  return h(
    "li",
    { class: "funnel-step", "data-step": step.step },
    h(
      "div",
      { class: "funnel-head" },
      h("span", { class: "funnel-name" }, `Step ${step.step}: ${step.title}`),
      h("span", { class: "funnel-users" }, count(step.users, "user")),
    ),
    h(
      "div",
      { class: "funnel-track", "aria-hidden": "true" },
      h("div", { class: "funnel-bar", style: `width: ${(share * 100).toFixed(2)}%` }),
    ),
    h("p", { class: "funnel-numbers" }, details.join(" · ")),
  );
}

function renderFailures({ failures }) {
  panelStatus("failures", failures);
  const out = $("failures-count");
  out.dataset.status = failures.status;
  if (failures.status === "forbidden") {
    out.textContent = "Needs admin role: ask an admin to check unresolved analytics failures.";
  } else if (failures.data) {
    const n = failures.data.totalCount;
    out.replaceChildren(
      h("strong", {}, String(n)),
      ` unresolved ${n === 1 ? "failure" : "failures"}`,
    );
  } else if (failures.status === "loading") {
    out.textContent = "Counting…";
  } else {
    out.textContent = "";
  }
}
