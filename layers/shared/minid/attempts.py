"""Each AWS attempt's own bounds: the SDK's timeouts (minid.wiring.AWS_CONFIG), and what the deadline
reckons an attempt's time by (minid.deadline). A module of its own, light to import: the health function's
resolver reckons its time kept without the wiring's botocore, and the wiring loads no adapter with it."""

CONNECT_SECONDS, READ_SECONDS = 1, 3
ATTEMPT_SECONDS = CONNECT_SECONDS + READ_SECONDS  # the longest one attempt can take
