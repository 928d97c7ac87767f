/* Login: keep the token, check it against the API, go back where the user came from. */
"use strict";
(() => {
  const form = document.getElementById("login");
  const msg = document.getElementById("msg");
  const next = new URLSearchParams(location.search).get("next");
  const target = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const t = document.getElementById("token").value.trim();
    Assay.setToken(t);
    try {
      const me = await Assay.api("/v1/tokens/self", { noRedirect: true });
      // a share token reads one experiment: go there unless the user asked for it already
      location.href = me.kind === "share" && me.experiment && !next ? `/experiments/${me.experiment}` : target;
    } catch (e) {
      Assay.setToken("");
      Assay.message(msg, e.status === 401 || e.status === 403 ? "That token was not accepted." : `Could not sign in: ${e.message}`);
    }
  });
  document.getElementById("token").focus();
})();
