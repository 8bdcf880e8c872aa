// Account and security: identity verification (patients), password change, one's sessions
// with "log out everywhere", and two-factor login.

import { $, api, currentUser, el, formatDateTime, guarded, show } from "/static/api.js";

let errors;

const IDENTITY = {
  verified: "Your identity is verified: you can consult online.",
  pending: "Your request waits for the clinic's staff to check your identity document.",
  none: "Your account is basic: bookings only, no online consultations yet.",
};

async function loadIdentity() {
  const state = await api("GET", "/api/me/identity");
  let text = IDENTITY.none;
  if (state.identity === "verified") text = IDENTITY.verified;
  else if (state.status === "pending") text = IDENTITY.pending;
  else if (state.status === "rejected") text = `Your last request was declined: ${state.note}.`;
  $("#identity-status").textContent = text;
  show($("#identity-form"), state.identity !== "verified" && state.status !== "pending");
}

async function loadSessions() {
  const { sessions } = await api("GET", "/api/me/sessions");
  $("#sessions-list").replaceChildren(
    ...sessions.map((s) =>
      el(
        "li",
        { dataset: { testid: "session" } },
        `Since ${formatDateTime(s.created_at)} from ${s.ip || "an unknown address"}`,
        s.current ? " (this one)" : "",
      ),
    ),
  );
}

function showTotp(on) {
  $("#totp-status").textContent = on ? "On: logging in asks for a code." : "Off.";
  show($("#totp-setup"), !on);
  show($("#totp-disable-form"), on && userIsPatient);
}

let userIsPatient = false;

function wire() {
  $("#identity-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(errors, $("#identity-button"), async () => {
      await api("POST", "/api/me/identity", { pesel: $("#identity-pesel").value.trim() });
      $("#identity-pesel").value = "";
      await loadIdentity();
    });
  });
  $("#password-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(errors, $("#password-button"), async () => {
      await api("POST", "/api/me/password", {
        current_password: $("#password-current").value,
        new_password: $("#password-new").value,
      });
      $("#password-current").value = "";
      $("#password-new").value = "";
      show($("#password-done"));
      await loadSessions();
    });
  });
  $("#logout-all").addEventListener("click", () =>
    guarded(errors, $("#logout-all"), async () => {
      await api("POST", "/api/me/sessions/logout-all");
      location.assign("/patient/");
    }),
  );
  $("#totp-setup").addEventListener("click", () =>
    guarded(errors, $("#totp-setup"), async () => {
      const { secret } = await api("POST", "/api/me/totp/setup");
      $("#totp-secret").textContent = secret;
      show($("#totp-enable-form"));
    }),
  );
  $("#totp-enable-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(errors, null, async () => {
      const { recovery_codes: codes } = await api("POST", "/api/me/totp/enable", {
        code: $("#totp-code").value.trim(),
      });
      show($("#totp-enable-form"), false);
      $("#totp-codes").textContent =
        "Keep these recovery codes somewhere safe; each works once instead of a code: " +
        codes.join(" ");
      show($("#totp-codes"));
      showTotp(true);
    });
  });
  $("#totp-disable-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(errors, null, async () => {
      await api("POST", "/api/me/totp/disable", { password: $("#totp-password").value });
      $("#totp-password").value = "";
      showTotp(false);
    });
  });
}

export async function start(banner) {
  errors = banner;
  const user = await currentUser();
  if (!user) {
    show($("#security-login"));
    return;
  }
  userIsPatient = user.role === "patient";
  show($("#security-app"));
  wire();
  show($("#identity-section"), userIsPatient);
  showTotp(user.totp);
  await guarded(errors, null, async () => {
    if (userIsPatient) await loadIdentity();
    await loadSessions();
  });
}
