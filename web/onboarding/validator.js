// Client-side validation (seed resource ui-a4y1): every rule the page checks before it
// sends anything, in one module.
//
// Two groups of rules:
// - the contract rules of CompleteOnboardingStepInput, mirroring app/services/onboarding.py
//   (parse_complete_step) limit for limit and message for message; tests/e2e prove that the
//   two agree on a table of inputs;
// - the per-step form fields (STEP_FORMS), whose values become the step's `metadata`.

export const MAX_STEP = 10_000;
export const MAX_METADATA_KEYS = 32;
export const MAX_METADATA_BYTES = 4096;
const IDEMPOTENCY_KEY = /^[A-Za-z0-9\-_:.]{16,255}$/;
const SOURCE = /^[a-z0-9\-_]{1,32}$/;
const USER_ID = /^[A-Za-z0-9_.@:\-]{1,128}$/; // POST /dev/sign-in, app/web.py
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Check a CompleteOnboardingStepInput: [{path: ["input", field], message}], empty when valid. */
export function validateCompleteStepInput({ step, idempotencyKey, source, metadata }) {
  const errors = [];
  const fail = (field, message) => errors.push({ path: ["input", field], message });
  if (!Number.isInteger(step) || step < 1 || step > MAX_STEP) {
    fail("step", `must be a step number between 1 and ${MAX_STEP}`);
  }
  if (typeof idempotencyKey !== "string" || !IDEMPOTENCY_KEY.test(idempotencyKey)) {
    fail("idempotencyKey", "must be 16-255 characters of letters, digits, '-', '_', ':' or '.'");
  }
  if (source != null && (typeof source !== "string" || !SOURCE.test(source))) {
    fail("source", "must be 1-32 characters of lowercase letters, digits, '-' or '_'");
  }
  const problem = metadata == null ? null : metadataProblem(metadata);
  if (problem) fail("metadata", problem);
  return errors;
}

function metadataProblem(metadata) {
  if (typeof metadata !== "object" || Array.isArray(metadata)) return "must be a JSON object";
  const entries = Object.entries(metadata);
  if (entries.length > MAX_METADATA_KEYS) return `must have at most ${MAX_METADATA_KEYS} keys`;
  for (const [key, value] of entries) {
    if (!key) return "keys must be non-empty strings";
    if (typeof value === "number" && !Number.isFinite(value)) {
      return `value of '${key}' must be a finite number`;
    }
    if (value !== null && !["string", "number", "boolean"].includes(typeof value)) {
      return `value of '${key}' must be a string, number, boolean or null`;
    }
    if (LONE_SURROGATE.test(key) || (typeof value === "string" && LONE_SURROGATE.test(value))) {
      return `value of '${key}' must be valid Unicode text`;
    }
    if (key.includes("\u0000") || (typeof value === "string" && value.includes("\u0000"))) {
      return `value of '${key}' must not contain NUL characters`;
    }
  }
  const size = new TextEncoder().encode(serverJson(entries)).length;
  if (size > MAX_METADATA_BYTES) {
    return `must be at most ${MAX_METADATA_BYTES} bytes as JSON (got ${size})`;
  }
  return null;
}

/** The compact JSON the server measures: Python's json.dumps of what JSON.stringify sends. */
function serverJson(entries) {
  const text = (v) => (typeof v === "number" ? pythonNumber(v) : JSON.stringify(v));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${text(v)}`).join(",")}}`;
}

/** How Python prints a number that arrived as JSON.stringify(n): only floats differ (repr). */
function pythonNumber(n) {
  const sent = JSON.stringify(n);
  if (/^-?\d+$/.test(sent)) return sent; // parsed as an int: printed as sent
  const [mantissa, exponent] = Math.abs(n).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const exp = Number(exponent);
  const sign = n < 0 ? "-" : "";
  if (exp < -4 || exp >= 16) {
    const fraction = digits.length > 1 ? `.${digits.slice(1)}` : "";
    const expText = `${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
    return `${sign}${digits[0]}${fraction}e${expText}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return `${sign}${digits.padEnd(exp + 1, "0")}.0`;
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

// --- the step forms ------------------------------------------------------------------------

export const ROLES = [
  ["engineer", "Engineer"],
  ["designer", "Designer"],
  ["product", "Product manager"],
  ["founder", "Founder"],
  ["other", "Other"],
];

/** Fields per step key (OnboardingStep.key); their values become the step's metadata. */
export const STEP_FORMS = {
  profile: [
    {
      name: "displayName",
      label: "Display name",
      missing: "Enter your display name.",
      maxLength: 64,
      autocomplete: "name",
    },
    { name: "role", label: "Your role", missing: "Choose your role.", options: ROLES },
  ],
  workspace: [
    {
      name: "workspaceName",
      label: "Workspace name",
      missing: "Enter a name for your workspace.",
      maxLength: 64,
    },
  ],
  invite: [
    {
      name: "teammateEmail",
      label: "Teammate's email",
      missing: "Enter your teammate's email address.",
      type: "email",
      maxLength: 254,
    },
  ],
  first_project: [
    {
      name: "projectName",
      label: "Project name",
      missing: "Enter a name for your project.",
      maxLength: 80,
    },
  ],
};

// The HTML standard's email shape (input type=email), with at least one dot in the domain.
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const EMAIL = new RegExp(`^[A-Za-z0-9.!#$%&'*+/=?^_\`{|}~-]+@${LABEL}(?:\\.${LABEL})+$`);
const CONTROL = /\p{Cc}/u;

/** One field's message, or null when the (trimmed) value is fine. */
export function fieldProblem(field, raw) {
  const value = typeof raw === "string" ? raw.trim() : "";
  if (!value) return field.missing;
  if (field.options) {
    return field.options.some(([v]) => v === value) ? null : "Choose one of the listed options.";
  }
  if ([...value].length > field.maxLength) {
    return `Use at most ${field.maxLength} characters.`;
  }
  if (CONTROL.test(value) || LONE_SURROGATE.test(value)) return "Remove the special characters.";
  if (field.type === "email" && !EMAIL.test(value)) {
    return "Enter an email address like name@example.com.";
  }
  return null;
}

/** Validate a step's form values: {errors: [{field, message}], metadata}. */
export function validateStepFields(stepKey, values) {
  const fields = STEP_FORMS[stepKey] ?? [];
  const errors = [];
  const metadata = {};
  for (const field of fields) {
    const message = fieldProblem(field, values[field.name]);
    if (message) errors.push({ field: field.name, message });
    else metadata[field.name] = values[field.name].trim();
  }
  return { errors, metadata };
}

/** The dev sign-in form's user id. */
export function userIdProblem(raw) {
  const value = typeof raw === "string" ? raw.trim() : "";
  if (!value) return "Enter a user id.";
  return USER_ID.test(value) ? null : "Use 1-128 letters, digits or _ . @ : -";
}
