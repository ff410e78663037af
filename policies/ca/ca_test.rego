package portcullis_test.ca

import rego.v1

import data.portcullis_test.lib as t

test_government_devices_hosted_denied if {
	t.decide("CA", "government", {}) == t.expect(["azure-eu", "deepseek-self", "openai"], {
		t.reason("ca-tbs-2025-02-06", "hosted", "deny", ["deepseek-hosted"]),
	})
}

test_tiktok_precedent_reaches_no_llm_backend if {
	t.decide("CA", "government", {"now": t.at("2024-01-01")}) == t.expect(t.all_ids, set())
}
