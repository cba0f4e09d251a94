"""Demo and test machinery, not used by a monitoring run: the offline demo (``run``), the local
HTTP server that serves example sites (``localserver``) and the local SMTP capture
(``smtpcapture``, which needs the ``pawatch[demo]`` extra: aiosmtpd)."""
