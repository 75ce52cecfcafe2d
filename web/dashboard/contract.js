// The dashboard's part of the typed contract (api-q7v1): its GraphQL documents, kept in
// web/dashboard/graphql/ and fetched at runtime. Requests go through the onboarding page's
// client (web/onboarding/contract.js): same headers, timeout and never-throwing answers.

import { GraphQLClient } from "../onboarding/contract.js";

export const OPERATIONS = [
  "DashboardKpiDefinitions",
  "DashboardKpiEventSeries",
  "DashboardOnboardingFunnel",
  "DashboardAnalyticsFailureCount",
];
const GRAPHQL_DIR = new URL("./graphql/", import.meta.url);

/** Fetch every operation document; throws when one is missing. */
export async function loadDashboardContract() {
  const texts = await Promise.all(
    OPERATIONS.map(async (op) => {
      const response = await fetch(new URL(`${op}.graphql`, GRAPHQL_DIR));
      if (!response.ok) throw new Error(`${op}.graphql: HTTP ${response.status}`);
      return response.text();
    }),
  );
  // None of these operations selects a union or an interface.
  return {
    documents: Object.fromEntries(OPERATIONS.map((op, i) => [op, texts[i]])),
    possibleTypes: {},
  };
}

export function dashboardClient({ contract, host, getToken, defaultTimeoutMs }) {
  return new GraphQLClient({
    contract,
    endpoint: host.graphqlUrl ?? "/graphql",
    getToken,
    timeoutMs: () => host.timeoutMs ?? defaultTimeoutMs,
  });
}

/**
 * What one answer means for a panel:
 *   {kind: "data", value}          the selected field
 *   {kind: "unauthenticated"}      no valid token: sign in (again)
 *   {kind: "forbidden", message}   signed in, but without the role the field needs
 *   {kind: "error", text}          anything else, as a sentence to show
 */
export function outcomeOf(answer, field) {
  if (!answer.ok) {
    const text = {
      timeout: "The server did not answer in time.",
      network: "Could not reach the server.",
    }[answer.failure];
    return { kind: "error", text: text ?? `The server answered HTTP ${answer.status}.` };
  }
  const error = answer.errors[0];
  const code = error?.extensions?.code;
  if (code === "UNAUTHENTICATED") return { kind: "unauthenticated" };
  if (code === "FORBIDDEN") return { kind: "forbidden", message: error.message };
  const value = answer.data?.[field];
  if (value != null) return { kind: "data", value };
  // BAD_USER_INPUT and INTERNAL_SERVER_ERROR messages are written to be shown (the latter
  // quotes the request id); anything else is not.
  if (code === "BAD_USER_INPUT" || code === "INTERNAL_SERVER_ERROR") {
    return { kind: "error", text: error.message };
  }
  return { kind: "error", text: "Unexpected answer from the server." };
}
