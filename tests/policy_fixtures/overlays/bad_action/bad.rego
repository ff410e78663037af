# Test overlay: an unknown PII action must fail closed (deny), never be ignored.
package portcullis.overlay.bad_action

import rego.v1

pii_tighten contains {"entity": "*", "action": "shred", "backends": null}
