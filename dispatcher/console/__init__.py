"""The console room: the operator console in the browser (``dispatcher console``), a Starlette
app with server-rendered Jinja2 pages, no JavaScript.

Owns: the app and its routes (:mod:`.app`), who is signed in and with which role -- passwords,
the trusted single sign-on proxy, CSRF tokens (:mod:`.auth`), the sessions, kept in Redis
(:mod:`.sessions`), the login throttle
(:mod:`.throttle`), the response headers and the access log (:mod:`.web`), the read-only pages
(:mod:`.pages`), the operator actions behind a confirmation (:mod:`.actions`), the filters of
the deliveries page and the patient token (:mod:`.filters`), the endpoints' chart
(:mod:`.chart`), what a page shows of a delivery (:mod:`.views`), and where it may listen
(:mod:`.listen`). The templates and the stylesheet are package data.

May import: ``ops``, ``worker``, ``intake``, ``runtime``, ``store``, ``queue``, ``policy``,
``config``, ``contract`` and the shared kernel; never ``cli``. It reads through ``store`` and
``ops`` only: no SQL here.

Invariants: no PHI (event data, response bodies, a patient's or encounter's id) in a URL, the
access log or the process log; a viewer's page never holds PHI; revealing PHI and every action
is an operator's, behind a CSRF token, and writes an audit row naming the signed-in user; no
secret (password hash, session secret, endpoint key) in any page.
"""
