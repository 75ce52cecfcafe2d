// The onboarding step component (seed resource ui-w8p2): renders the flow's state, captures
// each step's form from the fields the flow declares, shows field errors, confirmations and
// errors, and moves focus.

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

function stepItem({ step, title, description, kpiId, fields }, flow) {
  const id = `step-${step}`;
  const form = h(
    "form",
    {
      id: `${id}-form`,
      "aria-labelledby": `${id}-title`,
      "aria-describedby": description ? `${id}-description` : null,
      novalidate: true,
      hidden: true,
    },
    ...fields.map((field) => fieldBlock(id, field)),
    h("p", { id: `${id}-form-error`, class: "form-error", hidden: true }),
    h("button", { type: "submit", class: "primary" }, `Complete step ${step}`),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    flow.submit(step, formValues(step, fields));
  });
  const kpi = kpiId
    ? h("p", { class: "kpi" }, "Counts toward the KPI ", h("code", {}, kpiId))
    : null;
  return h(
    "li",
    { id, class: "step", "data-step": step },
    h("h2", { id: `${id}-title` }, `Step ${step}: ${title}`),
    description ? h("p", { id: `${id}-description`, class: "description" }, description) : null,
    kpi,
    h("p", { id: `${id}-state`, class: "step-state" }),
    form,
  );
}

/**
 * A field's control id. Controls carry no `name`: a form exposes each control's name as a
 * property (`form.length`, `form.addEventListener`, ...), so a field named like one would
 * break the form; and "-field-" keeps field ids apart from the step's own (`-title`, `-state`).
 */
const controlId = (stepId, fieldName) => `${stepId}-field-${fieldName}`;
const controlOf = (step, fieldName) => $(controlId(`step-${step}`, fieldName));

/** One StepField of the flow as a labelled control, its hint and its error message. */
function fieldBlock(stepId, field) {
  const id = controlId(stepId, field.name);
  const hint = hintOf(field);
  const describedBy = hint ? `${id}-hint` : null;
  const common = {
    id,
    "data-field": field.name,
    "aria-required": field.required && field.type !== "BOOLEAN" ? "true" : null,
    "aria-describedby": describedBy,
  };
  const label = h("label", { for: id }, field.label);
  const hintNode = hint ? h("p", { id: `${id}-hint`, class: "hint" }, hint) : null;
  const error = h("p", { id: `${id}-error`, class: "field-error", hidden: true });
  if (field.type === "BOOLEAN") {
    const box = h("input", { ...common, type: "checkbox" });
    return h("div", { class: "field checkbox" }, box, label, hintNode, error);
  }
  return h("div", { class: "field" }, label, control(field, common), hintNode, error);
}

function control(field, common) {
  switch (field.type) {
    case "CHOICE":
      return h(
        "select",
        common,
        h("option", { value: "" }, "Choose…"),
        ...(field.choices ?? []).map(({ value, label }) => h("option", { value }, label)),
      );
    case "INTEGER":
    case "NUMBER": {
      const integer = field.type === "INTEGER";
      return h("input", {
        ...common,
        type: "number",
        step: integer ? "1" : "any",
        inputmode: integer ? "numeric" : "decimal",
        min: field.minimum,
        max: field.maximum,
      });
    }
    case "EMAIL":
      return h("input", { ...common, type: "email", autocomplete: "off", spellcheck: "false" });
    default:
      // No maxlength attribute: it counts UTF-16 units, the server counts characters, so it
      // would cut off valid text made of emoji. The hint says the limit instead.
      return h("input", { ...common, type: "text", autocomplete: "off" });
  }
}

/** What the user should know before typing: optional, lengths, bounds. */
function hintOf({ type, required, minLength, maxLength, minimum, maximum }) {
  const optional = !required && type !== "BOOLEAN" ? "Optional." : null;
  const parts = [optional, range(minLength, maxLength, " characters"), range(minimum, maximum, "")];
  return parts.filter(Boolean).join(" ");
}

function range(low, high, unit) {
  if (low != null && high != null) return `From ${low} to ${high}${unit}.`;
  if (high != null) return `Up to ${high}${unit}.`;
  if (low != null) return `At least ${low}${unit}.`;
  return null;
}

/** The form's values for validateStepFields: text per field, true/false for checkboxes. */
function formValues(step, fields) {
  const values = {};
  for (const { name } of fields) {
    const input = controlOf(step, name);
    if (input.type === "checkbox") values[name] = input.checked;
    // A number input reports "" for text that is not a number; pass text that says so, so
    // the user is told "must be a number" rather than "is required".
    else if (input.validity.badInput) values[name] = "not a number";
    else values[name] = input.value;
  }
  return values;
}

function setFieldError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  const hint = document.getElementById(`${control.id}-hint`);
  error.textContent = message ?? "";
  error.hidden = !message;
  const describedBy = [message ? error.id : null, hint?.id].filter(Boolean).join(" ");
  if (message) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
  if (describedBy) control.setAttribute("aria-describedby", describedBy);
  else control.removeAttribute("aria-describedby");
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
  const invalid = fields.filter(({ field }) => controlOf(step, field));
  for (const { field, message } of invalid) setFieldError(controlOf(step, field), message);
  if (text) {
    const formError = $(`step-${step}-form-error`);
    formError.textContent = text;
    formError.hidden = false;
    alert.textContent = text;
  }
  const first = invalid[0];
  (first ? controlOf(step, first.field) : form.querySelector("button")).focus();
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
