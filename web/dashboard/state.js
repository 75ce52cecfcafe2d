// The dashboard's state and actions (no DOM): the signed-in user, the filters, and one
// panel state per query. view.js renders `state`; every change fires "change".
//
// Each panel is its own GraphQL request, so one refused field (analyticsFailures needs the
// admin role) never takes the others with it. Panels are
//   {status: "idle" | "loading" | "ready" | "error" | "forbidden", data, text}
// and a panel keeps its last data while it reloads.

import { userIdProblem } from "../onboarding/validator.js";
import { dashboardClient, loadDashboardContract, outcomeOf } from "./contract.js";
import { addDays, browserZone, dateSpan, isZone, parseDate, rangeOf, todayIn } from "./format.js";
import { Session, claimsOf } from "../onboarding/session.js";

export const DEFAULT_DAYS = 30;
export const INTERVALS = ["HOUR", "DAY", "WEEK"];
const DEFAULT_TIMEOUT_MS = 10_000;
const SESSION_EXPIRED = "Your session has expired. Sign in again to continue.";
const IDLE = Object.freeze({ status: "idle", data: null, text: null });
const DEV_ROLES = ["analyst", "admin"]; // app/web.py DEV_ROLES

export function defaultDates(zone, now = Date.now()) {
  const toDate = todayIn(zone, now);
  return { fromDate: addDays(toDate, -(DEFAULT_DAYS - 1)), toDate };
}

/** Problems with the filters, by field; empty when they can be sent. */
export function filterErrors({ fromDate, toDate, timeZone, interval }) {
  const errors = {};
  if (!parseDate(fromDate)) errors.fromDate = "Enter a start date.";
  if (!parseDate(toDate)) errors.toDate = "Enter an end date.";
  else if (!errors.fromDate && fromDate > toDate) {
    errors.toDate = "The end date must be on or after the start date.";
  }
  if (!isZone(timeZone)) errors.timeZone = "Choose a time zone.";
  if (!INTERVALS.includes(interval)) errors.interval = "Choose an interval.";
  return errors;
}

export class DashboardModule extends EventTarget {
  #generation = { series: 0, funnel: 0, failures: 0 };
  #datesEdited = false;

  constructor(host = {}) {
    super();
    this.host = host;
    this.session = new Session(host); // the onboarding page's: same hook, same storage
    this.client = null;
    const timeZone = browserZone();
    this.state = {
      phase: "loading", // loading | ready | failed (the contract or the KPI list)
      auth: "unknown", // unknown | signedOut | signedIn | expired
      userId: null,
      roles: [],
      hostManaged: this.session.hostManaged,
      devSignIn: false,
      access: "unknown", // unknown | granted | forbidden (the analyst role)
      kpis: [],
      filters: { kpiId: null, interval: "DAY", timeZone, ...defaultDates(timeZone) },
      filterErrors: {},
      series: IDLE,
      funnel: IDLE,
      failures: IDLE,
      notice: null, // {text, retry?: true, signIn?: true}: the page-wide alert
      announcement: "", // what the status region says
    };
  }

  #set(patch) {
    this.state = { ...this.state, ...patch };
    this.dispatchEvent(new Event("change"));
  }

  get kpi() {
    return this.state.kpis.find((k) => k.id === this.state.filters.kpiId) ?? null;
  }

  /** Load the documents and the KPI list (public), then the panels when signed in. */
  async start() {
    this.#set({ phase: "loading", notice: null, announcement: "Loading the dashboard…" });
    try {
      const contract = await loadDashboardContract();
      this.client = dashboardClient({
        contract,
        host: this.host,
        getToken: () => this.session.getToken(),
        defaultTimeoutMs: DEFAULT_TIMEOUT_MS,
      });
    } catch {
      return this.#loadFailed();
    }
    const answer = await this.client.execute("DashboardKpiDefinitions", {}, { auth: false });
    const outcome = outcomeOf(answer, "kpiDefinitions");
    if (outcome.kind !== "data" || outcome.value.length === 0) return this.#loadFailed();
    const kpis = outcome.value;
    const chosen = kpis.find((k) => k.id === this.state.filters.kpiId);
    const kpiId = (chosen ?? kpis.find((k) => k.kind === "LEADING") ?? kpis[0]).id;
    this.#set({ kpis, filters: { ...this.state.filters, kpiId } });
    await this.#enter();
  }

  #loadFailed() {
    this.#set({
      phase: "failed",
      announcement: "",
      notice: { text: "Could not load the dashboard. Try again.", retry: true },
    });
  }

  async #enter() {
    const token = await this.session.getToken().catch(() => null);
    if (!token) return this.#signedOut(this.state.auth === "expired" ? "expired" : "signedOut");
    const { userId, roles } = claimsOf(token);
    this.#set({ phase: "ready", auth: "signedIn", userId, roles, access: "unknown" });
    await this.refresh();
  }

  async #signedOut(auth) {
    const devSignIn = await this.session.devSignInAvailable();
    this.#set({
      phase: "ready",
      auth,
      userId: null,
      roles: [],
      access: "unknown",
      devSignIn,
      series: IDLE,
      funnel: IDLE,
      failures: IDLE,
      announcement: "",
    });
  }

  async #sessionExpired() {
    if (this.state.auth !== "signedIn") return; // several panels may say so at once
    this.session.expire();
    this.#set({ auth: "expired" });
    await this.#signedOut("expired");
    this.#set({ notice: { text: SESSION_EXPIRED, signIn: true } });
  }

  /** Development sign-in; resolves to {field, message} for the form, or null. */
  async signIn(rawUserId, role) {
    const problem = userIdProblem(rawUserId);
    if (problem) return { field: "userId", message: problem };
    if (!DEV_ROLES.includes(role)) return { field: "role", message: "Choose a role." };
    const failure = await this.session.devSignIn(rawUserId.trim(), [role]);
    if (failure) return { field: "userId", message: failure };
    this.#set({ notice: null });
    await this.#enter();
    return null;
  }

  signOut() {
    this.session.signOut();
    this.#set({ notice: null });
    return this.#signedOut("signedOut");
  }

  /** Retry after the dashboard itself could not load. */
  retry() {
    return this.start();
  }

  /** Change one filter; reloads the panels it affects once every filter is valid. */
  setFilter(name, value) {
    const filters = { ...this.state.filters, [name]: value };
    if (name === "fromDate" || name === "toDate") this.#datesEdited = true;
    // "The last 30 days" are the zone's last 30 days until the user picks dates.
    if (name === "timeZone" && !this.#datesEdited && isZone(value)) {
      Object.assign(filters, defaultDates(value));
    }
    const errors = filterErrors(filters);
    this.#set({ filters, filterErrors: errors });
    if (Object.keys(errors).length || this.state.auth !== "signedIn") return;
    if (name === "kpiId" || name === "interval") return this.#reload(["series"]);
    return this.#reload(["series", "funnel"]);
  }

  /** Reload every panel. */
  refresh() {
    if (this.state.auth !== "signedIn") return;
    const errors = filterErrors(this.state.filters);
    this.#set({ filterErrors: errors });
    if (Object.keys(errors).length) return this.#reload(["failures"]);
    return this.#reload(["series", "funnel", "failures"]);
  }

  /** Reload one panel (its Retry button). */
  retryPanel(panel) {
    const needsRange = panel !== "failures";
    if (needsRange && Object.keys(filterErrors(this.state.filters)).length) return;
    return this.#reload([panel]);
  }

  async #reload(panels) {
    this.#set({ announcement: "Loading…" });
    const loaders = {
      series: () => this.#loadSeries(),
      funnel: () => this.#loadFunnel(),
      failures: () => this.#loadFailures(),
    };
    const fresh = await Promise.all(panels.map((p) => loaders[p]()));
    if (fresh.every((f) => f === false) || this.state.auth !== "signedIn") return;
    this.#set({ announcement: this.#summary() });
  }

  /** Run one panel's query; resolves to false when a newer request overtook it. */
  async #load(panel, operation, field, variables, meta = {}) {
    const generation = ++this.#generation[panel];
    this.#set({ [panel]: { ...this.state[panel], status: "loading", text: null } });
    const answer = await this.client.execute(operation, variables);
    if (generation !== this.#generation[panel] || this.state.auth !== "signedIn") return false;
    const outcome = outcomeOf(answer, field);
    switch (outcome.kind) {
      case "data": {
        const access = panel === "failures" ? this.state.access : "granted";
        this.#set({
          access,
          [panel]: { status: "ready", data: outcome.value, text: null, ...meta },
        });
        return true;
      }
      case "unauthenticated":
        await this.#sessionExpired();
        return false;
      case "forbidden":
        this.#set({ [panel]: { status: "forbidden", data: null, text: outcome.message } });
        if (panel !== "failures") this.#forbidden();
        return true;
      default:
        this.#set({ [panel]: { ...this.state[panel], status: "error", text: outcome.text } });
        return true;
    }
  }

  #forbidden() {
    const who = this.state.userId ? `You are signed in as ${this.state.userId}, but the` : "The";
    this.#set({
      access: "forbidden",
      notice: {
        text:
          `${who} KPI dashboard needs the analyst role (or admin). ` +
          "Ask an admin for access, or sign in as another user.",
      },
    });
  }

  #range() {
    const { fromDate, toDate, timeZone } = this.state.filters;
    const { from, to } = rangeOf(fromDate, toDate, timeZone);
    return { from: from.toISOString(), to: to.toISOString(), meta: { fromDate, toDate, timeZone } };
  }

  #loadSeries() {
    const { kpiId, interval, timeZone } = this.state.filters;
    const { from, to, meta } = this.#range();
    const variables = { kpiId, from, to, interval, timeZone };
    return this.#load("series", "DashboardKpiEventSeries", "kpiEventSeries", variables, {
      ...meta,
      kpi: this.kpi,
    });
  }

  #loadFunnel() {
    const { from, to, meta } = this.#range();
    return this.#load(
      "funnel",
      "DashboardOnboardingFunnel",
      "onboardingFunnel",
      { from, to },
      meta,
    );
  }

  #loadFailures() {
    return this.#load("failures", "DashboardAnalyticsFailureCount", "analyticsFailures", {});
  }

  #summary() {
    const { series, funnel, access } = this.state;
    if (access === "forbidden") return "";
    const parts = [];
    if (series.status === "ready") {
      const span = dateSpan(series.fromDate, series.toDate);
      parts.push(`${series.kpi.name}: ${series.data.totalEvents} events, ${span}.`);
    }
    if (funnel.status === "ready") {
      parts.push(`Funnel: ${funnel.data.steps[0]?.users ?? 0} users started onboarding.`);
    }
    const failed = ["series", "funnel", "failures"].filter((p) => this.state[p].status === "error");
    if (failed.length === 1) parts.push("One panel could not load.");
    if (failed.length > 1) parts.push(`${failed.length} panels could not load.`);
    return parts.length ? `Dashboard updated. ${parts.join(" ")}` : "";
  }
}
