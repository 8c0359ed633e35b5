// The demo shop's own code: what a site writes around the snippet (docs/web.md).
(function () {
  "use strict";
  var body = document.body, banner = document.getElementById("consent-banner");
  var who = document.getElementById("who");
  function show(on) { banner.hidden = !on; }
  function on(id, action) {
    document.getElementById(id).onclick = function () { show(false); action(); };
  }
  on("consent-accept", function () { personify.consent.grant(); });
  on("consent-session", function () { personify.consent.deny(); });  // session-only
  on("consent-decline", function () { personify.consent.deny({ sessionOnly: false }); });
  personify.init({
    apiKey: body.getAttribute("data-key"),
    itemUrl: "/demo-shop/item/{id}",
    sessionOnly: true,
    consentVersion: "demo-1",
    // the site's consent callback: the banner decides; until then nothing is stored or sent
    consent: function () { show(true); }
  });
  document.getElementById("privacy").onclick = function () {
    personify.consent.withdraw();  // tracking stops at once; ask again
    show(true);
  };
  document.getElementById("login").onclick = function () {
    // a real site's backend renders a person token into the logged-in page
    fetch("/demo-shop/login").then(function (r) { return r.json(); }).then(function (t) {
      return personify.identify(t.user_id, t.person_token).then(function (ok) {
        who.textContent = ok ? "Signed in as " + t.user_id : "Sign-in needs consent first";
        if (ok) sessionStorage.setItem("demo-login", JSON.stringify(t));
      });
    });
  };
  var saved = sessionStorage.getItem("demo-login");
  if (saved && personify.consent.status() === "full") {
    var t = JSON.parse(saved);
    personify.identify(t.user_id, t.person_token);
    who.textContent = "Signed in as " + t.user_id;
  }
})();
