# Test overlay: relaxing and tightening PII actions (precedence: strictest wins).
package portcullis.overlay.pii_mix

import rego.v1

pii_relax contains {"entity": "*", "action": "allow", "backends": ["azure-eu"]}

pii_relax contains {"entity": "PERSON", "action": "allow", "backends": ["openai"]}

pii_tighten contains {"entity": "EMAIL_ADDRESS", "action": "redact", "backends": null}

pii_tighten contains {"entity": "PERSON", "action": "mask", "backends": ["azure-eu"]}
