// Client-side validation (seed resource ui-a4y1): every rule the page checks before it
// sends anything, in one module.
//
// Two groups of rules:
// - the contract rules of CompleteOnboardingStepInput, mirroring app/services/onboarding.py
//   (parse_complete_step) limit for limit and message for message; tests/e2e prove that the
//   two agree on a table of inputs;
// - the step's tracking plan: the fields each step declares in onboardingFlow, mirroring
//   app/services/tracking_plan.py (metadata_problems) the same way; a step's form values
//   become its `metadata` (validateStepFields).

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

// --- the step's tracking plan ----------------------------------------------------------------
//
// Mirrors app/services/tracking_plan.py rule for rule and message for message. A step is the
// OnboardingStep of the onboardingFlow query: {step, key, fields, allowsExtraMetadata}, each
// field {name, label, type: "STRING" | "EMAIL" | ..., required, minLength, maxLength,
// minimum, maximum, choices: [{value, label}]}.

// The HTML standard's email shape (input type=email), with at least one dot in the domain.
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const EMAIL = new RegExp(`^[A-Za-z0-9.!#$%&'*+/=?^_\`{|}~-]+@${LABEL}(?:\\.${LABEL})+$`);
const CONTROL = /\p{Cc}/u; // the server's [\x00-\x1f\x7f-\x9f]
// Python's str.isspace(): the server's idea of a blank value. Unlike JavaScript's \s it
// includes U+001C-U+001F and U+0085 and excludes U+FEFF.
const PY_SPACE =
  "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const BLANK = new RegExp(`^[${PY_SPACE}]*$`);
// Trimming removes what either language calls whitespace, so a value the page keeps is
// never one the server would call blank.
const EDGE_SPACE = new RegExp(`^[\\s${PY_SPACE}]+|[\\s${PY_SPACE}]+$`, "g");
// The HTML standard's "valid floating-point number": what a number input accepts as text.
const NUMBER_TEXT = /^-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?$/;

/** The problems of a step's metadata: [{field, message}] in the server's order; [] if valid. */
export function metadataProblems(step, metadata) {
  const errors = [];
  for (const spec of step.fields) {
    const value = Object.hasOwn(metadata, spec.name) ? metadata[spec.name] : null;
    const problem = isAbsent(value) && spec.required ? missing(spec) : valueProblem(spec, value);
    if (problem) errors.push({ field: spec.name, message: problem });
  }
  if (!step.allowsExtraMetadata) {
    const declared = step.fields.map((f) => f.name);
    const allowed = [...declared].sort().join(", ") || "none";
    for (const key of Object.keys(metadata)) {
      if (declared.includes(key)) continue;
      const message =
        `'${key}' is not a field of step ${step.step} (${step.key}); ` +
        `its fields are: ${allowed}.`;
      errors.push({ field: key, message });
    }
  }
  return errors;
}

function isAbsent(value) {
  return value == null || (typeof value === "string" && BLANK.test(value));
}

function missing(spec) {
  return spec.type === "CHOICE"
    ? `${spec.label}: choose one of the options.`
    : `${spec.label} is required.`;
}

function valueProblem(spec, value) {
  if (isAbsent(value)) return null; // optional and not given
  const { label } = spec;
  switch (spec.type) {
    case "STRING":
    case "EMAIL": {
      if (typeof value !== "string") return `${label} must be text.`;
      const length = [...value].length; // code points, as Python's len()
      if (spec.minLength != null && length < spec.minLength) {
        return `${label} must be at least ${spec.minLength} characters.`;
      }
      if (spec.maxLength != null && length > spec.maxLength) {
        return `${label} must be at most ${spec.maxLength} characters.`;
      }
      if (CONTROL.test(value)) return `${label} must not contain control characters.`;
      if (spec.type === "EMAIL" && !EMAIL.test(value)) {
        return `${label} must be an email address like name@example.com.`;
      }
      return null;
    }
    case "INTEGER":
    case "NUMBER": {
      const integer = spec.type === "INTEGER";
      if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) {
        return integer ? `${label} must be a whole number.` : `${label} must be a number.`;
      }
      if (spec.minimum != null && value < spec.minimum) {
        return `${label} must be at least ${formatNumber(spec.minimum)}.`;
      }
      if (spec.maximum != null && value > spec.maximum) {
        return `${label} must be at most ${formatNumber(spec.maximum)}.`;
      }
      return null;
    }
    case "BOOLEAN":
      return typeof value === "boolean" ? null : `${label} must be true or false.`;
    case "CHOICE": {
      const values = (spec.choices ?? []).map((c) => c.value);
      return values.includes(value) ? null : `${label} must be one of: ${values.join(", ")}.`;
    }
    default:
      return null;
  }
}

/** A bound as the server's format_number prints it: String(n) for whole numbers, else repr. */
function formatNumber(n) {
  return Number.isInteger(n) && Math.abs(n) < 1e21 ? String(n) : pythonNumber(n);
}

/**
 * Validate a step's form values ({name: text | boolean}): {errors: [{field, message}], metadata}.
 *
 * `metadata` is what the page sends: text trimmed, blank values left out, number text
 * turned into numbers. Text that is not a number stays text, so the server (and
 * metadataProblems) answer "must be a number" for it rather than "is required".
 */
export function validateStepFields(step, values) {
  if (!step) return { errors: [], metadata: {} }; // an unknown step: the server refuses it
  const metadata = {};
  for (const spec of step.fields) {
    const value = formValue(spec, values[spec.name]);
    if (value !== undefined) metadata[spec.name] = value;
  }
  return { errors: metadataProblems(step, metadata), metadata };
}

function formValue(spec, raw) {
  if (typeof raw !== "string") return raw ?? undefined; // a checkbox's true/false
  const text = raw.replace(EDGE_SPACE, "");
  if (!text) return undefined;
  const numeric = spec.type === "INTEGER" || spec.type === "NUMBER";
  if (numeric && NUMBER_TEXT.test(text) && Number.isFinite(Number(text))) return Number(text);
  return text;
}

/**
 * Every problem the server reports for this CompleteOnboardingStepInput of `step` (null for
 * a step not in the flow), in its order: [{path, message}]. As parse_complete_step: the
 * contract rules first, then the tracking plan, only when the metadata passes the contract.
 */
export function submissionProblems(step, input) {
  const errors = validateCompleteStepInput(input);
  if (step && !errors.some((e) => e.path.at(-1) === "metadata")) {
    for (const { field, message } of metadataProblems(step, input.metadata ?? {})) {
      errors.push({ path: ["input", "metadata", field], message });
    }
  }
  return errors;
}

/** The dev sign-in form's user id. */
export function userIdProblem(raw) {
  const value = typeof raw === "string" ? raw.trim() : "";
  if (!value) return "Enter a user id.";
  return USER_ID.test(value) ? null : "Use 1-128 letters, digits or _ . @ : -";
}
