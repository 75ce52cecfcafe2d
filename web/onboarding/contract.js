// The typed contract (seed resource api-q7v1) as the page uses it: the GraphQL documents in
// web/graphql/*.graphql, fetched at runtime, and a small client with a timeout.

const OPERATIONS = ["OnboardingFlow", "MyOnboardingProgress", "CompleteOnboardingStep"];
const GRAPHQL_DIR = new URL("../graphql/", import.meta.url);

/** Fetch every operation document and the possibleTypes map; throws when one is missing. */
export async function loadContract() {
  const get = async (name) => {
    const response = await fetch(new URL(name, GRAPHQL_DIR));
    if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
    return response;
  };
  const text = async (op) => (await get(`${op}.graphql`)).text();
  const texts = await Promise.all(OPERATIONS.map(text));
  const possibleTypes = await (await get("possibleTypes.json")).json();
  const documents = Object.fromEntries(OPERATIONS.map((op, i) => [op, texts[i]]));
  return { documents, possibleTypes };
}

/**
 * POST one operation. Never throws; resolves to one of
 *   {ok: true, data, errors}                     a GraphQL answer (errors may be present)
 *   {ok: false, failure: "timeout"|"network"|"http", status}   no usable answer
 */
export class GraphQLClient {
  /** getToken and timeoutMs are functions, asked before every request. */
  constructor({ contract, endpoint, getToken, timeoutMs }) {
    this.contract = contract;
    this.endpoint = endpoint;
    this.getToken = getToken;
    this.timeoutMs = timeoutMs;
  }

  isUserError(typename) {
    return this.contract.possibleTypes.UserError.includes(typename);
  }

  async execute(operationName, variables = {}, { auth = true } = {}) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    const query = this.contract.documents[operationName];
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs());
    try {
      const token = auth ? await this.getToken() : null; // the host's hook may fail, too
      if (token) headers.Authorization = `Bearer ${token}`;
      const response = await fetch(this.endpoint, {
        method: "POST",
        headers,
        body: JSON.stringify({ query, operationName, variables }),
        signal: controller.signal,
      });
      const body = response.ok ? await response.json() : null;
      if (!body || typeof body !== "object") {
        return { ok: false, failure: "http", status: response.status };
      }
      return { ok: true, data: body.data ?? null, errors: body.errors ?? [] };
    } catch {
      return { ok: false, failure: controller.signal.aborted ? "timeout" : "network" };
    } finally {
      clearTimeout(timer);
    }
  }
}
