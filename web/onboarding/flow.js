// The onboarding flow and its state (seed resource ui-v3n6). No DOM here: the component
// (component.js) renders `state` and calls the actions; every change fires "change".

import { GraphQLClient, loadContract } from "./contract.js";
import { Session, userIdOf } from "./session.js";
import { submissionProblems, userIdProblem, validateStepFields } from "./validator.js";

export const SOURCE = "web";
const DEFAULT_TIMEOUT_MS = 10_000;

const NOT_ELIGIBLE = {
  ALREADY_COMPLETED: (n) => `Step ${n} is already completed.`,
  PREVIOUS_STEP_INCOMPLETE: (n) => `Step ${n} is not available yet: complete earlier steps first.`,
  UNKNOWN_STEP: (n) => `Step ${n} is not part of onboarding.`,
};
const SESSION_EXPIRED = "Your session has expired. Sign in again to continue.";

/** A new idempotency key: one per attempt of a step, reused on each retry of that attempt. */
export function newKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  const part = (from, to) => hex.slice(from, to);
  return `${part(0, 8)}-${part(8, 12)}-${part(12, 16)}-${part(16, 20)}-${part(20)}`;
}

export class OnboardingModule extends EventTarget {
  constructor(host = {}) {
    super();
    this.host = host;
    this.session = new Session(host);
    this.client = null;
    this.attempt = null; // {step, key, metadata}: the submission whose outcome is not known yet
    this.state = {
      phase: "loading", // loading | ready | failed
      auth: "unknown", // unknown | signedOut | signedIn | expired
      userId: null,
      hostManaged: this.session.hostManaged,
      devSignIn: false,
      steps: [],
      progress: null,
      busyStep: null,
      // What to tell the user now: {kind: "pending" | "success" | "invalid" | "error", step,
      // text, fields (invalid), analytics and kpiId (success), retry: "submit" | "load"}.
      notice: null,
    };
  }

  #set(patch) {
    this.state = { ...this.state, ...patch };
    this.dispatchEvent(new Event("change"));
  }

  /** Load the contract, the flow and (when signed in) the progress. */
  async start() {
    this.#set({ phase: "loading", notice: null });
    try {
      const contract = await loadContract();
      this.client = new GraphQLClient({
        contract,
        endpoint: this.host.graphqlUrl ?? "/graphql",
        getToken: () => this.session.getToken(),
        timeoutMs: () => this.host.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      });
    } catch {
      return this.#loadFailed();
    }
    const answer = await this.client.execute("OnboardingFlow", {}, { auth: false });
    if (!answer.ok || !answer.data) return this.#loadFailed();
    this.#set({ steps: answer.data.onboardingFlow.steps });
    await this.#loadProgress();
  }

  async #loadProgress() {
    const token = await this.session.getToken().catch(() => null);
    if (!token) return this.#signedOut(this.state.auth === "expired" ? "expired" : "signedOut");
    const answer = await this.client.execute("MyOnboardingProgress");
    if (!answer.ok) return this.#loadFailed();
    if (answer.errors.some((e) => e.extensions?.code === "UNAUTHENTICATED")) {
      return this.#sessionExpired();
    }
    if (!answer.data) return this.#loadFailed();
    this.#set({
      phase: "ready",
      auth: "signedIn",
      userId: userIdOf(token),
      progress: answer.data.myOnboardingProgress,
    });
  }

  #loadFailed() {
    this.#set({
      phase: "failed",
      notice: { kind: "error", text: "Could not load onboarding. Try again.", retry: "load" },
    });
  }

  async #signedOut(auth) {
    const devSignIn = await this.session.devSignInAvailable();
    this.#set({ phase: "ready", auth, userId: null, progress: null, devSignIn });
  }

  async #sessionExpired() {
    this.attempt = null;
    this.session.expire();
    await this.#signedOut("expired");
    this.#set({ notice: { kind: "error", text: SESSION_EXPIRED, signIn: true } });
  }

  /** Development sign-in; resolves to an error message for the user id field, or null. */
  async signIn(rawUserId) {
    const problem = userIdProblem(rawUserId);
    if (problem) return problem;
    const failure = await this.session.devSignIn(rawUserId.trim());
    if (failure) return failure;
    this.#set({ notice: null });
    await this.#loadProgress();
    return null;
  }

  signOut() {
    this.attempt = null;
    this.session.signOut();
    this.#set({ notice: null });
    return this.#signedOut("signedOut");
  }

  /** Validate a step's form values and, only when they are valid, submit them. */
  async submit(step, values) {
    if (this.state.busyStep !== null) return;
    const definition = this.#step(step);
    const { metadata } = validateStepFields(definition, values);
    // The same values after an unanswered attempt are that attempt again: same key.
    const same = this.attempt?.step === step && sameJson(this.attempt.metadata, metadata);
    const attempt = same ? this.attempt : { step, key: newKey(), metadata };
    const problems = submissionProblems(definition, inputOf(attempt));
    if (problems.length) {
      return this.#set({ notice: { kind: "invalid", step, ...invalidNotice(problems) } });
    }
    this.attempt = attempt;
    return this.#send();
  }

  #step(step) {
    return this.state.steps.find((s) => s.step === step);
  }

  /** Resend the unanswered attempt with its key, or reload after a failed load. */
  retry() {
    if (this.state.busyStep !== null) return;
    if (this.state.notice?.retry === "load") return this.start();
    if (this.attempt) return this.#send();
  }

  async #send() {
    const { step } = this.attempt;
    this.#set({ busyStep: step, notice: { kind: "pending", step } });
    const variables = { input: inputOf(this.attempt) };
    const answer = await this.client.execute("CompleteOnboardingStep", variables);
    this.#set({ busyStep: null });
    const result = answer.ok ? answer.data?.completeOnboardingStep : null;
    if (!result) {
      const timeout = answer.failure === "timeout";
      const why = timeout ? "The server did not answer in time" : "Something went wrong";
      const text = `${why}, so step ${step} may not have been saved. Retrying is safe.`;
      return this.#set({ notice: { kind: "error", step, text, retry: "submit" } });
    }
    if (result.__typename === "CompleteOnboardingStepSuccess") return this.#succeeded(result);
    if (this.client.isUserError(result.__typename)) return this.#failed(step, result);
    this.attempt = null;
    this.#set({ notice: { kind: "error", step, text: "Unexpected answer from the server." } });
  }

  #succeeded({ progress, analytics }) {
    const { step } = this.attempt;
    this.attempt = null;
    const kpiId = analytics.event?.kpiId ?? this.#step(step)?.kpiId;
    this.#set({ progress, notice: { kind: "success", step, analytics: analytics.status, kpiId } });
  }

  async #failed(step, error) {
    const keep = (text) => this.#set({ notice: { kind: "error", step, text, retry: "submit" } });
    const drop = (notice) => {
      this.attempt = null;
      this.#set({ notice: { kind: "error", step, ...notice } });
    };
    switch (error.__typename) {
      case "AuthenticationError":
        return this.#sessionExpired();
      case "ValidationError":
        return drop({ kind: "invalid", ...serverFieldErrors(this.#step(step), error) });
      case "StepNotEligibleError":
        drop({ text: (NOT_ELIGIBLE[error.reason] ?? (() => error.message))(error.step) });
        return this.#refreshProgress();
      case "PersistenceError":
        if (error.retryable) return keep(`Step ${step} could not be saved now. Try again later.`);
        return drop({ text: `Step ${step} could not be saved. Try again later.` });
      case "RateLimitedError":
        return keep(`Too many attempts. Try step ${step} again in ${error.retryAfterSeconds} s.`);
      case "IdempotencyConflictError":
        if (error.retryable) return keep(`Step ${step} is still being saved. Retry in a moment.`);
        return drop({ text: `Step ${step} changed while it was being saved. Submit it again.` });
      default:
        return drop({ text: error.message });
    }
  }

  /** Re-read progress after the server disagreed with the page, keeping the notice. */
  async #refreshProgress() {
    const notice = this.state.notice;
    await this.#loadProgress();
    if (this.state.phase === "ready" && this.state.auth === "signedIn") this.#set({ notice });
  }
}

function inputOf({ step, key, metadata }) {
  return { step, idempotencyKey: key, source: SOURCE, metadata };
}

/** The page's own problems: a step field's next to its control, the others in one text. */
function invalidNotice(problems) {
  const fields = problems
    .filter((e) => e.path.length === 3)
    .map((e) => ({ field: e.path[2], message: e.message }));
  const others = problems.filter((e) => e.path.length !== 3);
  const text = others.map((e) => `${e.path.at(-1)} ${e.message}`).join("; ") || null;
  return { fields, text };
}

function sameJson(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * A ValidationError as {fields, text}: the errors of the step's own fields (path
 * ["input", "metadata", name]) go next to their controls, every other one into the text.
 */
function serverFieldErrors(definition, { message, fieldErrors }) {
  const names = new Set((definition?.fields ?? []).map((f) => f.name));
  const isField = ({ path }) => path.length === 3 && path[1] === "metadata" && names.has(path[2]);
  const fields = fieldErrors
    .filter(isField)
    .map((e) => ({ field: e.path[2], message: e.message }));
  const details = fieldErrors
    .filter((e) => !isField(e))
    .map((e) => `${e.path.at(-1)}: ${e.message}`)
    .join("; ");
  if (details) return { fields, text: `The server rejected this step (${details}).` };
  return { fields, text: fields.length ? null : message };
}
