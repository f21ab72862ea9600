// rowhook's one time format, shared by the admin page and the rule studio:
// the browser's local time to the second with its offset from UTC.
'use strict';

window.rowhookTime = (function () {
  const pad = (n, w) => String(n).padStart(w || 2, '0');
  // fmtZone names the browser's offset from UTC at d: "UTC", "UTC+01:00".
  function fmtZone(d) {
    const off = -(d || new Date()).getTimezoneOffset();
    if (off === 0) return 'UTC';
    const a = Math.abs(off);
    return `UTC${off < 0 ? '-' : '+'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
  }
  // fmtTime is the page's one time format: the browser's local time to the
  // second, with its offset from UTC ("2026-11-23 11:03:00 UTC+01:00").
  function fmtTime(s) {
    if (!s) return '';
    const d = new Date(s);
    if (isNaN(d)) return s;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${fmtZone(d)}`;
  }
  // fmtTimesIn rewrites the RFC 3339 times in a server's text (a webhook's
  // disabled reason: "410 Gone at 2026-12-03T13:46:04Z", a re-run's note)
  // in the page's format.
  function fmtTimesIn(text) {
    return String(text).replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)/g, (m) => fmtTime(m));
  }
  return Object.freeze({ pad, fmtZone, fmtTime, fmtTimesIn });
})();
