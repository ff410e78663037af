package portcullis_test.it

import rego.v1

import data.portcullis_test.lib as t

eu_info := {
	t.reason("eu-edpb-2025-02-11", "hosted", "info", ["deepseek-hosted"]),
	t.reason("eu-edpb-chatgpt-taskforce-2023-04-13", "hosted", "info", ["openai"]),
}

test_garante_order_covers_everyone_in_italy if {
	t.decide("IT", "individual", {}) == t.expect(["azure-eu", "deepseek-self", "openai"], eu_info | {
		t.reason("it-garante-2025-01-30", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("it-garante-2025-05-isp-letter", "hosted", "warn", ["deepseek-hosted"]),
		t.reason("it-agcm-2025-06", "hosted", "info", ["deepseek-hosted"]),
	})
}

test_chatgpt_order_denied_openai_until_lifted if {
	t.decide("IT", "private", {"now": t.at("2023-04-01")}) == t.expect(["azure-eu", "deepseek-hosted", "deepseek-self"], {
		t.reason("it-garante-chatgpt-2023-03-30", "hosted", "deny", ["openai"]),
	})
}

test_chatgpt_order_lifted if {
	t.decide("IT", "private", {"now": t.at("2023-04-28")}) == t.expect(t.all_ids, {
		t.reason("eu-edpb-chatgpt-taskforce-2023-04-13", "hosted", "info", ["openai"]),
	})
}
