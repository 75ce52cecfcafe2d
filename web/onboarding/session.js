// Where the bearer token comes from. Either the host application provides it:
//
//   window.onboardingKpi = {
//     getToken: async () => "<JWT>",          // called before every request
//     onSessionExpired: () => { ... },        // optional: the server rejected the token
//   };
//
// or the token is kept in sessionStorage under TOKEN_KEY (set by the host, or by the
// development sign-in form, which POSTs /dev/sign-in; that route exists only in ENV=development).

export const TOKEN_KEY = "onboardingKpi.token";

export class Session {
  constructor(host, { devSignInUrl = "/dev/sign-in" } = {}) {
    this.host = host;
    this.devSignInUrl = devSignInUrl;
  }

  get hostManaged() {
    return typeof this.host.getToken === "function";
  }

  async getToken() {
    if (this.hostManaged) return (await this.host.getToken()) || null;
    return sessionStorage.getItem(TOKEN_KEY);
  }

  /** The session ended on the server's word; drop the stored token and tell the host. */
  expire() {
    sessionStorage.removeItem(TOKEN_KEY);
    this.host.onSessionExpired?.();
  }

  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
  }

  /** True when the server offers POST /dev/sign-in (it answers GET with 405, not 404). */
  async devSignInAvailable() {
    if (this.hostManaged) return false;
    try {
      return (await fetch(this.devSignInUrl)).status === 405;
    } catch {
      return false;
    }
  }

  /** Mint a development token with these roles; resolves to null or to an error message. */
  async devSignIn(userId, roles = []) {
    let response;
    try {
      response = await fetch(this.devSignInUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ userId, roles }),
      });
    } catch {
      return "Could not reach the server. Check your connection and try again.";
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok || typeof body.token !== "string") {
      return body.error ?? `Sign-in failed (HTTP ${response.status}).`;
    }
    sessionStorage.setItem(TOKEN_KEY, body.token);
    return null;
  }
}

/** The user id and roles inside a JWT, for display only: the server decides access. */
export function claimsOf(token) {
  try {
    const base64 = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    const roles = Array.isArray(claims.roles)
      ? claims.roles.filter((r) => typeof r === "string")
      : [];
    return { userId: typeof claims.sub === "string" ? claims.sub : null, roles };
  } catch {
    return { userId: null, roles: [] };
  }
}

/** The user id (`sub`) inside a JWT, for display only; the server checks the signature. */
export function userIdOf(token) {
  return claimsOf(token).userId;
}
