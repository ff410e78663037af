package portcullis_test.fr

import rego.v1

import data.portcullis_test.lib as t

test_information_request_is_information if {
	t.decide("FR", "private", {"now": t.at("2025-01-30")}) == t.expect(t.all_ids, {
		t.reason("fr-cnil-2025-01-30", "hosted", "info", ["deepseek-hosted"]),
		t.reason("eu-edpb-chatgpt-taskforce-2023-04-13", "hosted", "info", ["openai"]),
	})
}
