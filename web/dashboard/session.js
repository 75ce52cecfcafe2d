// Signing in on the dashboard: the onboarding page's Session (web/onboarding/session.js),
// same hook (window.onboardingKpi.getToken) and the same sessionStorage key, plus a role
// for the development sign-in form.

import { Session, TOKEN_KEY } from "../onboarding/session.js";

export const DEV_ROLES = ["analyst", "admin"]; // app/web.py DEV_ROLES

export class DashboardSession extends Session {
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
