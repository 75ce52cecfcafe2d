// The onboarding step component (seed resource ui-w8p2): renders the flow's state, captures
// each step's form, shows field errors, confirmations and errors, and moves focus.

import { STEP_FORMS } from "./validator.js";

const $ = (id) => document.getElementById(id);

function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === true) node.setAttribute(name, "");
    else if (value !== false && value != null) node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

export function mountOnboarding(flow) {
  const view = { stepsBuilt: false, lastNotice: null };
  const signInForm = $("sign-in-form");
  const userField = $("sign-in-user");

  signInForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    setFieldError(userField, null);
    const problem = await flow.signIn(userField.value);
    if (problem) {
      setFieldError(userField, problem);
      userField.focus();
    }
  });
  $("sign-out").addEventListener("click", async () => {
    await flow.signOut();
    if (!signInForm.hidden) userField.focus();
  });
  $("retry").addEventListener("click", () => flow.retry());

  flow.addEventListener("change", () => {
    const { state } = flow;
    const focusedForm = document.activeElement?.closest("form");
    if (!view.stepsBuilt && state.steps.length) {
      $("steps").replaceChildren(...state.steps.map((s) => stepItem(s, flow)));
      view.stepsBuilt = true;
    }
    document.querySelector("main").setAttribute("aria-busy", String(state.phase === "loading"));
    renderSession(state);
    renderSteps(state);
    if (state.notice !== view.lastNotice) {
      view.lastNotice = state.notice;
      renderNotice(state);
    }
    // Keyboard users keep their place when the form they were in goes away.
    if (focusedForm?.closest("[hidden]")) focusNext(state.progress);
  });
}

function stepItem({ step, key, title, kpiId }, flow) {
  const id = `step-${step}`;
  const fields = (STEP_FORMS[key] ?? []).map((field) => fieldBlock(id, field));
  const form = h(
    "form",
    { id: `${id}-form`, "aria-labelledby": `${id}-title`, novalidate: true, hidden: true },
    ...fields,
    h("p", { id: `${id}-form-error`, class: "form-error", hidden: true }),
    h("button", { type: "submit", class: "primary" }, `Complete step ${step}`),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    flow.submit(step, Object.fromEntries(new FormData(form)));
  });
  const kpi = kpiId
    ? h("p", { class: "kpi" }, "Counts toward the KPI ", h("code", {}, kpiId))
    : null;
  return h(
    "li",
    { id, class: "step", "data-step": step },
    h("h2", { id: `${id}-title` }, `Step ${step}: ${title}`),
    kpi,
    h("p", { id: `${id}-state`, class: "step-state" }),
    form,
  );
}

function fieldBlock(stepId, field) {
  const id = `${stepId}-${field.name}`;
  const control = field.options
    ? h(
        "select",
        { id, name: field.name },
        h("option", { value: "" }, "Choose…"),
        ...field.options.map(([value, label]) => h("option", { value }, label)),
      )
    : h("input", {
        id,
        name: field.name,
        type: field.type ?? "text",
        autocomplete: field.autocomplete ?? "off",
        spellcheck: field.type === "email" ? "false" : null,
      });
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, field.label),
    control,
    h("p", { id: `${id}-error`, class: "field-error", hidden: true }),
  );
}

function setFieldError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  error.textContent = message ?? "";
  error.hidden = !message;
  if (message) {
    control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", error.id);
  } else {
    control.removeAttribute("aria-invalid");
    control.removeAttribute("aria-describedby");
  }
}

function renderSession({ auth, userId, devSignIn, hostManaged }) {
  const signedIn = auth === "signedIn";
  $("session-bar").hidden = !signedIn;
  $("session-user").textContent = userId ?? "";
  $("sign-out").hidden = hostManaged;
  $("sign-in").hidden = signedIn || auth === "unknown";
  $("sign-in-form").hidden = !devSignIn;
  $("host-sign-in").hidden = devSignIn;
}

function renderSteps({ steps, progress, auth, busyStep }) {
  const done = new Set(progress?.completedSteps ?? []);
  for (const { step } of steps) {
    const item = $(`step-${step}`);
    const current = auth === "signedIn" && progress?.nextStep === step;
    const status = done.has(step) ? "done" : current ? "current" : "locked";
    item.dataset.status = status;
    if (status === "current") item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
    const locked = auth === "signedIn" ? `Locked: complete step ${progress?.nextStep} first` : "";
    $(`step-${step}-state`).textContent =
      { done: "Completed", current: "Up next" }[status] ?? (locked || "Sign in to start");
    const form = $(`step-${step}-form`);
    form.hidden = !current;
    form.setAttribute("aria-busy", String(busyStep === step));
    const button = form.querySelector("button[type=submit]");
    button.setAttribute("aria-disabled", String(busyStep !== null));
  }
  const summary = $("progress");
  summary.hidden = !progress;
  if (progress) {
    summary.textContent = progress.isComplete
      ? `Onboarding complete: all ${progress.totalSteps} steps done.`
      : `${progress.completedSteps.length} of ${progress.totalSteps} steps completed.`;
  }
}

function renderNotice({ notice, progress, steps }) {
  const status = $("status");
  const alert = $("alert");
  const retry = $("retry");
  status.replaceChildren();
  alert.replaceChildren();
  retry.hidden = !notice?.retry;
  for (const { step } of steps) clearStepErrors(step);
  if (!notice) return;
  switch (notice.kind) {
    case "pending":
      status.textContent = `Saving step ${notice.step}…`;
      return;
    case "success":
      status.append(...confirmation(notice));
      return focusNext(progress);
    case "invalid":
      return showInvalid(notice, alert);
    default:
      alert.textContent = notice.text;
      if (notice.retry) retry.focus();
      else if (notice.signIn && !$("sign-in-form").hidden) $("sign-in-user").focus();
  }
}

function confirmation({ step, analytics, kpiId }) {
  const parts = [h("strong", {}, `Step ${step} completed.`)];
  if (analytics === "RECORDED") parts.push(" KPI recorded: ", h("code", {}, kpiId), ".");
  if (analytics === "FAILED") {
    parts.push(" The KPI event could not be recorded yet; it will be recorded later.");
  }
  return parts;
}

function showInvalid({ step, fields, text }, alert) {
  const form = $(`step-${step}-form`);
  for (const { field, message } of fields) setFieldError(form.elements[field], message);
  if (text) {
    const formError = $(`step-${step}-form-error`);
    formError.textContent = text;
    formError.hidden = false;
    alert.textContent = text;
  }
  const first = fields[0];
  (first ? form.elements[first.field] : form.querySelector("button")).focus();
}

function clearStepErrors(step) {
  const form = $(`step-${step}-form`);
  for (const control of form.querySelectorAll("[aria-invalid]")) setFieldError(control, null);
  $(`step-${step}-form-error`).hidden = true;
}

function focusNext(progress) {
  const next = progress?.nextStep && $(`step-${progress.nextStep}-form`);
  const target = next ? next.querySelector("input, select, button") : $("progress");
  target.focus();
}
