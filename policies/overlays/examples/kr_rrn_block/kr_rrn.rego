# METADATA
# title: A Korean resident registration number never leaves
# description: >-
#   Example overlay. Any KR_RRN found in a request is blocked on every backend (the request is
#   refused by the PII stage when one is present); other entity types keep their actions.
package portcullis.overlay.kr_rrn_block

import rego.v1

pii_tighten contains {"entity": "KR_RRN", "action": "block", "backends": null}
