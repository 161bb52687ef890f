// issue 23: reveal the actions of `flank serve --actions`, and follow a running run or log live.
// Nothing shows unless the server's /api/session answers: nginx alone, S3 or a file on disk show no button.
(function () {
  "use strict";
  var FINAL_QUERY = "final"; // the ended run's page, fetched afresh (showFinalPage): its address is the page's own
  if (new RegExp("[?&]" + FINAL_QUERY + "=").test(location.search) && history.replaceState) {
    history.replaceState(null, "", location.pathname + location.hash);
  }
  var box = document.getElementById("flank-actions");
  if (!box || !window.fetch || !window.URLSearchParams) return;
  var d = box.dataset, api = d.api, csrf = "", msg = box.querySelector(".flank-message");
  var q = "project=" + encodeURIComponent(d.project || "") + "&pipeline=" + encodeURIComponent(d.pipeline || "");

  function say(text, bad) {
    msg.textContent = text || "";
    msg.className = "flank-message" + (bad ? " warning" : "");
  }
  function badge(el, s) {
    if (!el || !s) return;
    el.className = "badge s-" + s.key;
    el.textContent = s.icon + " " + s.label;
  }
  function key() {
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function post(action, body) {
    body.set("csrf", csrf);
    return fetch(api + action, {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
    }).then(function (r) {
      return r.json().catch(function () { return { ok: false, message: "HTTP " + r.status }; });
    });
  }
  function showForms(status) {
    box.querySelectorAll("form.flank-act").forEach(function (form) {
      var when = form.dataset.when;
      form.hidden = !form.dataset.allowed || (when && when.split(" ").indexOf(status) < 0);
    });
  }

  function signedIn(s) {
    csrf = s.csrf;
    if (d.kind === "pipeline") clearTimeout(reload); // a reload would lose what the Run form was filled with
    box.querySelector("[data-flank-user]").textContent = "Signed in as " + s.user + " (" + s.role + ").";
    var out = box.querySelector("[data-flank-signout]");
    out.hidden = false;
    out.addEventListener("click", function (e) {
      e.preventDefault();
      post("logout", new URLSearchParams()).then(function () { location.reload(); });
    });
    var may = s.role === "admin" || (s.projects || []).indexOf(d.project) >= 0;
    box.querySelectorAll("form.flank-act").forEach(function (form) {
      if (may) form.dataset.allowed = "1";
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        var button = form.querySelector("button");
        if (!form.dataset.idem) form.dataset.idem = key(); // one key per form: a double click starts one run
        button.disabled = true;
        var body = new URLSearchParams(new FormData(form)), mode = body.get("mode");
        body.delete("mode");
        if (mode === "from") { body.set("from", body.get("task")); }
        if (mode !== "task") { body.delete("task"); }
        form.querySelectorAll("[data-flank-params] input[type=checkbox]").forEach(function (c) {
          body.set(c.name, c.checked ? "true" : "false"); // an unticked box says false, not "the default"
        });
        body.set("project", d.project);
        body.set("pipeline", d.pipeline);
        body.set("idem", form.dataset.idem);
        say("…");
        post(form.dataset.action, body).then(function (j) {
          say(j.message, !j.ok);
          if (j.ok && j.url) { location.href = d.root + j.url; return; } // the server answers once it is drawn
          if (!j.ok) form.dataset.idem = "";
          button.disabled = false;
        }, function () { say("flank serve did not answer", true); button.disabled = false; form.dataset.idem = ""; });
      });
    });
    showForms(d.status);
  }

  function liveRun() {
    var es = live(new EventSource(api + "events/run?" + q + "&run=" + encodeURIComponent(d.run)));
    var h1 = document.querySelector("main h1 .badge");
    es.addEventListener("run", function (e) {
      var s = JSON.parse(e.data), live = document.querySelector("section.live");
      badge(h1, s.status);
      document.querySelectorAll("table.tasks tbody tr").forEach(function (tr) {
        var name = tr.querySelector(".t-name"), t = name && s.tasks[name.textContent];
        if (!t) return;
        tr.className = "s-" + t.status.key;
        badge(tr.querySelector(".badge"), t.status);
        var took = tr.querySelector("[data-label=took]"), exit = tr.querySelector("[data-label=exit]");
        if (took) took.textContent = t.took;
        if (exit) exit.textContent = t.exit;
      });
      if (!live) {
        live = document.createElement("section");
        live.className = "live";
        live.innerHTML = "<h2>Running now</h2>";
        var facts = document.querySelector("dl.facts");
        facts.parentNode.insertBefore(live, facts);
      }
      live.querySelectorAll("article").forEach(function (a) {
        var n = a.querySelector(".f-name");
        if (!n || !(n.textContent in s.live)) a.remove();
      });
      Object.keys(s.live).forEach(function (name) {
        var art = Array.prototype.find.call(live.querySelectorAll("article"), function (a) {
          return a.querySelector(".f-name").textContent === name;
        });
        if (!art) {
          art = document.createElement("article");
          art.className = "failure s-running";
          art.innerHTML = '<div class="f-head"><strong class="f-name"></strong></div><pre class="log excerpt"></pre>';
          art.querySelector(".f-name").textContent = name;
          live.appendChild(art);
        }
        var pre = art.querySelector("pre") || art.appendChild(document.createElement("pre"));
        pre.className = "log excerpt";
        pre.innerHTML = s.live[name]; // escaped by the server's log renderer, as on the page itself
        var none = art.querySelector("p.muted");
        if (none) none.remove();
      });
      live.hidden = !Object.keys(s.live).length;
    });
    es.addEventListener("end", function (e) {
      var s = JSON.parse(e.data);
      es.close();
      badge(h1, s.status);
      d.status = s.status.value;
      showForms(d.status);
      say("The run ended: " + s.status.label + ". ");
      var a = document.createElement("a");
      a.href = location.pathname;
      a.textContent = "See its final page";
      msg.appendChild(a);
      showFinalPage(FINAL_PAGE_TRIES);
    });
  }

  // The graph, timeline and failures of an ended run are drawn by its after-run step, a moment after
  // the end: look at the page as drawn until it no longer says running, then show it in place of this
  // one. If it never comes (the site step failed), the link above stays. Not location.reload(): the
  // browser would ask for the page "if modified since" the running one's Last-Modified, which has whole
  // seconds, and a page redrawn within that second would come back as "not modified", still running.
  var FINAL_PAGE_TRIES = 120, FINAL_PAGE_EVERY_MS = 500;
  function showFinalPage(tries) {
    function again() { if (tries > 1) setTimeout(function () { showFinalPage(tries - 1); }, FINAL_PAGE_EVERY_MS); }
    fetch(location.pathname, { cache: "no-store", credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : "";
    }).then(function (html) {
      var drawn = new DOMParser().parseFromString(html, "text/html").getElementById("flank-actions");
      if (drawn && drawn.dataset.status && drawn.dataset.status !== "running") {
        location.replace(location.pathname + "?" + FINAL_QUERY + "=" + Date.now()); // a URL no cache holds
      } else {
        again();
      }
    }, again);
  }

  function liveLog() {
    var es = live(new EventSource(api + "events/log?" + q + "&run=" + encodeURIComponent(d.run) +
      "&task=" + encodeURIComponent(d.task) + "&from=" + encodeURIComponent(d.size)));
    es.addEventListener("lines", function (e) {
      var lines = JSON.parse(e.data), pres = document.querySelectorAll("main pre.log"), pre = pres[pres.length - 1];
      if (!pre) {
        pre = document.createElement("pre");
        pre.className = "log";
        box.parentNode.insertBefore(pre, box);
      }
      lines.forEach(function (html) {
        if (pre.classList.contains("timed")) {
          pre.insertAdjacentHTML("beforeend", '<span class="ln"><span class="t"></span>' + html + "</span>\n");
        } else {
          pre.insertAdjacentHTML("beforeend", (pre.innerHTML ? "\n" : "") + html);
        }
      });
    });
    es.addEventListener("end", function (e) {
      es.close();
      badge(document.querySelector("main h1 .badge"), JSON.parse(e.data).status);
    });
  }

  // A page of a running run refreshes every 10 s (with scripts, here; the meta refresh is for pages
  // without them) unless the live stream below keeps it current.
  var reload = d.refresh ? setTimeout(function () { location.reload(); }, d.refresh * 1000) : null;
  function live(es) { es.addEventListener("open", function () { clearTimeout(reload); }); return es; }

  fetch(api + "session", { credentials: "same-origin", headers: { "Accept": "application/json" } }).then(function (r) {
    if (r.status !== 200 || (r.headers.get("Content-Type") || "").indexOf("json") < 0) return;
    return r.json().then(function (s) {
      box.hidden = false;
      if (s.user) {
        signedIn(s);
      } else {
        var a = box.querySelector("[data-flank-signin]");
        a.href = api + "login?next=" + encodeURIComponent(location.pathname);
        a.hidden = false;
      }
      if (d.kind === "run" && d.status === "running") liveRun();
      if (d.kind === "log" && d.status === "running") liveLog();
    });
  }).catch(function () {});
})();
