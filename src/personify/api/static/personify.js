/*! Personify web snippet | Apache-2.0 | docs/web.md */
(function (w, d) {
  "use strict";
  var P = {}, cfg = {}, mode = "off", st = null, queue = [], sending = false, timer = 0,
    backoff = 0, seen = [], PRE = "personify:", KQ = PRE + "queue", KC = PRE + "consent",
    KA = PRE + "aid", KS = PRE + "session", COOKIE = "personify_aid",
    FIELDS = ["item_id", "item_ids", "value", "price", "quantity", "currency", "order_id",
      "query", "recommendation_id", "properties"],
    SESSION_TYPES = { view: 1, click: 1, add_to_cart: 1, purchase: 1 };

  function ls() { try { return w.localStorage; } catch (e) { return null; } }
  function ss() { try { return w.sessionStorage; } catch (e) { return null; } }
  function get(store, k) {
    try { var v = store && store.getItem(k); return v ? JSON.parse(v) : null; } catch (e) { return null; }
  }
  function put(store, k, v) {
    try { if (store) { if (v === null) store.removeItem(k); else store.setItem(k, JSON.stringify(v)); } } catch (e) { /* full */ }
  }
  function rnd(n) {
    var a = new Uint8Array(n), s = "", c = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (w.crypto || {}).getRandomValues ? w.crypto.getRandomValues(a) : a.forEach(function (_, i) { a[i] = Math.random() * 256; });
    for (var i = 0; i < n; i++) s += c[a[i] & 63];
    return s;
  }
  function cookie(v) {
    var sec = location.protocol === "https:" ? "; Secure" : "";
    d.cookie = COOKIE + "=" + (v || "") + "; path=/; SameSite=Lax; max-age=" + (v ? 31536000 : 0) + sec;
  }
  function cookieId() {
    var m = d.cookie.match(new RegExp("(?:^|; )" + COOKIE + "=(anon-[\\w-]{16,64})"));
    return m && m[1];
  }
  function enc(v) { return encodeURIComponent(v); }

  function req(method, path, body, keepalive) {
    var h = { "X-API-Key": cfg.apiKey };
    if (st) {
      h["X-Personify-Anonymous-Id"] = st.aid;
      if (st.token) { h["X-Personify-User-Id"] = st.user; h["X-Person-Token"] = st.token; }
    }
    if (body) h["Content-Type"] = "application/json";
    return w.fetch(cfg.host + path, {
      method: method, headers: h, body: body ? JSON.stringify(body) : undefined,
      keepalive: !!keepalive, credentials: "omit"
    });
  }

  // ---- modes: "off" (nothing stored or sent), "full" (consented), "session" (browser only)
  function start() {
    var aid = get(ls(), KA) || cookieId();
    if (!aid) aid = "anon-" + rnd(22);
    put(ls(), KA, aid); cookie(aid);
    st = { aid: aid, user: null, token: null };
    queue = get(ls(), KQ) || [];
    mode = "full";
    put(ss(), KS, null);
    if (cfg.pageView !== false) P.page();
    scan(d);
    flush();
  }
  function stop(next) {
    mode = next; st = null; queue = []; sending = false;
    clearTimeout(timer);
    put(ls(), KQ, null); put(ls(), KA, null); put(ls(), KC, null); cookie("");
    if (next !== "session") put(ss(), KS, null);
    else { if (!get(ss(), KS)) put(ss(), KS, []); scan(d); }
  }
  function record(action, purposes) {
    if (!st) return Promise.resolve();
    var who = st.token ? st.user : st.aid;
    return Promise.all(purposes.map(function (p) {
      return req("POST", "/v1/users/" + enc(who) + "/consents/" + enc(p) + ":" + action,
        { source: "web-snippet", text_version: cfg.consentVersion || null }, true)
        .catch(function () { /* recorded next time */ });
    }));
  }
  P.consent = {
    grant: function (purposes) {
      if (cfg.tracking === false || gpc()) return Promise.resolve(false);
      purposes = purposes && purposes.length ? purposes : cfg.purposes;
      put(ls(), KC, purposes);
      if (mode !== "full") start();
      return record("grant", purposes).then(function () { return true; });
    },
    deny: function (o) {
      var done = record("deny", cfg.purposes);
      stop(cfg.sessionOnly && !(o && o.sessionOnly === false) ? "session" : "off");
      return done;
    },
    withdraw: function () {
      var done = record("withdraw", get(ls(), KC) || cfg.purposes);
      stop(cfg.sessionOnly ? "session" : "off");
      return done;
    },
    status: function () { return mode; }
  };
  function gpc() { return cfg.honorGPC !== false && w.navigator.globalPrivacyControl === true; }

  P.init = function (options) {
    cfg = options || {};
    cfg.host = (cfg.host || "").replace(/\/$/, "");
    cfg.purposes = cfg.purposes || ["personalization", "profiling"];
    cfg.batchSize = cfg.batchSize || 20;
    cfg.flushInterval = cfg.flushInterval || 1000;
    if (!cfg.apiKey) throw new Error("personify.init: apiKey is required");
    if (cfg.tracking === false || gpc()) {
      stop(cfg.sessionOnly ? "session" : "off");
    } else if (get(ls(), KC)) {
      start();
    } else if (cfg.sessionOnly && get(ss(), KS)) {
      stop("session"); // chosen earlier in this visit
    } else if (typeof cfg.consent === "function") {
      var decide = function (ok) {
        if (ok === true || (ok && ok.length)) P.consent.grant(ok === true ? null : ok);
        else if (ok === false) P.consent.deny();
      };
      var r = cfg.consent(decide);
      if (r && r.then) r.then(decide); else if (r !== undefined) decide(r);
    }
    w.addEventListener("online", function () { backoff = 0; flush(); });
    w.addEventListener("pagehide", beacon);
    d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") beacon(); });
    d.addEventListener("click", onClick, true);
    return P;
  };

  // ---- events
  P.track = function (type, props) {
    props = props || {};
    if (mode === "session") {
      if (props.item_id && SESSION_TYPES[type]) remember(props.item_id, type);
      return null;
    }
    if (mode !== "full") return null;
    var e = {
      event_id: props.event_id || "w-" + rnd(20), type: type, anonymous_id: st.aid,
      timestamp: new Date().toISOString(),
      context: { channel: "web", page: location.pathname.slice(0, 200) }
    };
    FIELDS.forEach(function (f) { if (props[f] !== undefined && props[f] !== null) e[f] = props[f]; });
    queue.push(e);
    if (queue.length > 500) queue = queue.slice(-500);
    put(ls(), KQ, queue);
    schedule(queue.length >= cfg.batchSize ? 0 : cfg.flushInterval);
    return e.event_id;
  };
  P.page = function (props) {
    return P.track("page", { properties: { title: d.title.slice(0, 200) } });
  };
  function itemEvent(type) {
    return function (id, props) {
      var p = {}, k;
      for (k in props || {}) p[k] = props[k];
      p.item_id = String(id);
      return P.track(type, p);
    };
  }
  P.viewItem = itemEvent("view");
  P.click = itemEvent("click");
  P.addToCart = itemEvent("add_to_cart");
  P.purchase = itemEvent("purchase");

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(flush, backoff || ms);
  }
  function outgoing(events) {
    return events.map(function (e) {
      if (!st.token) return e;
      var c = {}, k;
      for (k in e) c[k] = e[k];
      c.user_id = st.user;
      return c;
    });
  }
  function flush() {
    if (mode !== "full" || sending || !queue.length) return Promise.resolve();
    var batch = queue.slice(0, cfg.batchSize), ids = {};
    batch.forEach(function (e) { ids[e.event_id] = 1; });
    sending = true;
    return req("POST", "/v1/events/batch", { events: outgoing(batch) }).then(function (r) {
      sending = false;
      if (r.status === 429 || r.status >= 500) return retry();
      // stored, duplicates, or refused for good (malformed, forbidden): never sent again
      queue = queue.filter(function (e) { return !ids[e.event_id]; });
      if (mode === "full") put(ls(), KQ, queue);
      backoff = 0;
      if (queue.length) schedule(0);
    }, function () { sending = false; retry(); });
  }
  P.flush = flush;
  function retry() {
    backoff = Math.min(30000, (backoff || 500) * 2);
    schedule(backoff);
  }
  function beacon() {
    if (mode !== "full" || !queue.length || !w.navigator.sendBeacon) return;
    var q = "?api_key=" + enc(cfg.apiKey) + "&anonymous_id=" + enc(st.aid) +
      (st.token ? "&user_id=" + enc(st.user) + "&person_token=" + enc(st.token) : "");
    w.navigator.sendBeacon(cfg.host + "/v1/events/beacon" + q,
      new Blob([JSON.stringify({ events: outgoing(queue.slice(0, 100)) })], { type: "text/plain" }));
    // the events stay queued: if the beacon was lost they go next time, and the server
    // acknowledges a repeated event id without storing it twice
  }

  // ---- identity
  P.identify = function (userId, personToken) {
    if (mode !== "full" || !userId || !personToken) return Promise.resolve(false);
    st.user = String(userId); st.token = personToken;
    var link = function () {
      return req("POST", "/v1/browser/identify", { user_id: st.user, anonymous_id: st.aid });
    };
    return link().then(function (r) {
      if (r.status !== 409) return r.ok;
      // this browser's id belongs to someone else (a shared computer): start a new one
      st.aid = "anon-" + rnd(22); put(ls(), KA, st.aid); cookie(st.aid);
      return link().then(function (r2) { return r2.ok; });
    });
  };
  P.reset = function () {
    if (mode !== "full") return;
    st.user = st.token = null;
    st.aid = "anon-" + rnd(22); put(ls(), KA, st.aid); cookie(st.aid);
  };
  P.anonymousId = function () { return st && st.aid; };

  // ---- session-only mode: interactions kept in this tab's sessionStorage only
  function remember(item, type) {
    var s = get(ss(), KS) || [];
    s.push({ item_id: String(item), type: type, timestamp: new Date().toISOString() });
    put(ss(), KS, s.slice(-50));
  }

  // ---- recommendations and widgets
  P.recommend = function (o) {
    o = o || {};
    var n = o.n || 4, r;
    if (mode === "session") {
      r = req("POST", "/v1/recommendations/session",
        { items: get(ss(), KS) || [], n: n, widget: o.widget || undefined });
    } else if (mode === "full") {
      var who = st.token ? "&user_id=" + enc(st.user) : "&anonymous_id=" + enc(st.aid);
      r = req("GET", o.item
        ? "/v1/items/" + enc(o.item) + "/similar?explain=true&n=" + n + (st.token ? who : "")
        : "/v1/recommendations?explain=true&n=" + n + who);
    } else return Promise.resolve(null);
    return r.then(function (x) { return x.ok ? x.json() : null; });
  };
  function safeUrl(u) {
    var a = d.createElement("a");
    a.href = u;
    return /^https?:$/.test(a.protocol) ? a.href : null;
  }
  function value(it, f) {
    var item = it.item || {}, props = item.properties || {};
    if (f === "url") return props.url || (cfg.itemUrl ? cfg.itemUrl.replace("{id}", enc(it.item_id)) : null);
    return it[f] !== undefined ? it[f] : item[f] !== undefined ? item[f] : props[f];
  }
  function el(tag, cls, text) {
    var e = d.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function itemNode(it, tpl) {
    var node, v;
    if (tpl) {
      node = el("div", "personify-item");
      node.appendChild(tpl.content.cloneNode(true));
      [].forEach.call(node.querySelectorAll("[data-field]"), function (x) {
        v = value(it, x.getAttribute("data-field"));
        x.textContent = v === undefined || v === null ? "" : String(v);
      });
      ["href", "src"].forEach(function (a) {
        [].forEach.call(node.querySelectorAll("[data-field-" + a + "]"), function (x) {
          v = value(it, x.getAttribute("data-field-" + a));
          v = v && safeUrl(String(v));
          if (v) x.setAttribute(a, v); else x.removeAttribute(a);
        });
      });
    } else {
      node = el("li", "personify-item");
      var url = value(it, "url"), title = value(it, "title") || it.item_id, link = el(url ? "a" : "span", "personify-title", title);
      if (url && (url = safeUrl(url))) link.setAttribute("href", url);
      node.appendChild(link);
      if (it.explanation) node.appendChild(el("small", "personify-why", it.explanation));
    }
    node.setAttribute("data-personify-item", it.item_id);
    return node;
  }
  function render(box, data, name) {
    var id = box.getAttribute("data-template"), tpl = id && d.getElementById(id), list;
    tpl = tpl && tpl.content ? tpl : null;
    while (box.firstChild) box.removeChild(box.firstChild);
    list = el(tpl ? "div" : "ul", "personify-row");
    data.items.forEach(function (it, i) {
      var node = itemNode(it, tpl);
      node.setAttribute("data-personify-position", i);
      list.appendChild(node);
    });
    box.appendChild(list);
    box._pfy = { rid: data.recommendation_id, name: name };
    box.setAttribute("data-personify-state", data.items.length ? "rendered" : "empty");
    if (mode === "full" && data.items.length && w.IntersectionObserver) {
      var io = new w.IntersectionObserver(function (entries) {
        if (!entries.some(function (e) { return e.isIntersecting; })) return;
        io.disconnect();
        P.track("impression", {
          event_id: "imp-" + data.recommendation_id, recommendation_id: data.recommendation_id,
          item_ids: data.items.map(function (it) { return it.item_id; }),
          properties: { widget: name }
        });
        box.setAttribute("data-personify-seen", "1");
      }, { threshold: 0.5 });
      io.observe(box);
    }
  }
  // ---- a page of rows: each item's impression is reported when half of it is in view
  P.rows = function (name, o) {
    o = o || {};
    if (mode !== "full") return Promise.resolve(null);
    var who = st.token ? "&user_id=" + enc(st.user) : "&anonymous_id=" + enc(st.aid);
    return req("GET", "/v1/pages/" + enc(name) + "?explain=true" + who +
      (o.language ? "&language=" + enc(o.language) : "")).then(function (x) {
      return x.ok ? x.json() : null;
    });
  };
  function renderPage(box, data, name) {
    var id = box.getAttribute("data-template"), tpl = id && d.getElementById(id), io = null;
    tpl = tpl && tpl.content ? tpl : null;
    while (box.firstChild) box.removeChild(box.firstChild);
    if (mode === "full" && w.IntersectionObserver) {
      io = new w.IntersectionObserver(function (entries) {
        entries.forEach(function (e) {
          if (e.intersectionRatio < 0.5 || mode !== "full") return;
          var node = e.target, r = node._pfyRow, pos = +node.getAttribute("data-personify-position");
          io.unobserve(node);
          P.track("impression", {
            event_id: "imp-" + r.rid + "-" + pos, recommendation_id: r.rid,
            item_ids: [node.getAttribute("data-personify-item")],
            properties: { widget: name, page_id: r.page_id, row_id: r.row_id, position: pos }
          });
          node.setAttribute("data-personify-seen", "1");
        });
      }, { threshold: [0, 0.5, 1] });
    }
    data.rows.forEach(function (row) {
      var sec = el("section", "personify-page-row"), list = el(tpl ? "div" : "ul", "personify-row");
      sec.setAttribute("data-personify-row", row.row_id);
      sec._pfy = { rid: row.recommendation_id, name: name, page_id: data.page_id, row_id: row.row_id };
      sec.appendChild(el("h3", "personify-row-title", row.title));
      sec.appendChild(el("small", "personify-row-why", row.reason));
      row.items.forEach(function (it, i) {
        var node = itemNode(it, tpl);
        node.setAttribute("data-personify-position", i);
        node._pfyRow = sec._pfy;
        list.appendChild(node);
      });
      sec.appendChild(list);
      box.appendChild(sec);
      if (io) [].forEach.call(list.children, function (n) { io.observe(n); });
    });
    box._pfy = { name: name, page_id: data.page_id };
    box.setAttribute("data-personify-state", data.rows.length ? "rendered" : "empty");
  }
  function loadPage(box) {
    var name = box.getAttribute("data-personify-page");
    if (mode !== "full") { box.setAttribute("data-personify-state", "empty"); return; }
    P.rows(name).then(function (data) { if (data && data.rows) renderPage(box, data, name); });
  }

  function load(box) {
    var name = box.getAttribute("data-personify-widget");
    return P.recommend({
      widget: name, n: +box.getAttribute("data-n") || 4, item: box.getAttribute("data-item")
    }).then(function (data) { if (data && data.items) render(box, data, name); });
  }
  function scan(root) {
    if (mode === "off") return;
    [].forEach.call(root.querySelectorAll("[data-personify-view]"), function (x) {
      if (seen.indexOf(x) < 0) { seen.push(x); P.viewItem(x.getAttribute("data-personify-view")); }
    });
    [].forEach.call(root.querySelectorAll("[data-personify-widget]"), function (x) {
      if (x._pfyMode !== mode) { x._pfyMode = mode; load(x); }
    });
    [].forEach.call(root.querySelectorAll("[data-personify-page]"), function (x) {
      if (x._pfyMode !== mode) { x._pfyMode = mode; loadPage(x); }
    });
  }
  P.scan = function (root) { scan(root || d); };
  function onClick(ev) {
    var t = ev.target, box = t.closest && (t.closest("[data-personify-row]") ||
        t.closest("[data-personify-widget]")),
      tracked = t.closest && t.closest("[data-personify-track]"), pf = box && box._pfy,
      rid = pf && pf.rid, item = t.closest && t.closest("[data-personify-item]"),
      props = pf && pf.row_id ? { page_id: pf.page_id, row_id: pf.row_id } : {};
    if (tracked) {
      var price = parseFloat(tracked.getAttribute("data-personify-price"));
      P.track(tracked.getAttribute("data-personify-track"), {
        item_id: tracked.getAttribute("data-personify-item") || undefined,
        price: isNaN(price) ? undefined : price, recommendation_id: rid,
        properties: pf && pf.row_id ? props : undefined
      });
    } else if (pf && item) {
      props.widget = pf.name;
      props.position = +item.getAttribute("data-personify-position");
      P.track("click", {
        item_id: item.getAttribute("data-personify-item"), recommendation_id: rid, properties: props
      });
    }
  }

  w.personify = P;
  if (typeof module === "object" && module.exports) module.exports = P;
})(window, document);
