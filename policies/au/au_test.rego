package portcullis_test.au

import rego.v1

import data.portcullis_test.lib as t

test_government_hosted_denied_and_weights_cautious if {
	t.decide("AU", "government", {}) == t.expect(["azure-eu", "openai"], {
		{
			"rule": "au.au-homeaffairs-2025-02-04.hosted",
			"effect": "deny",
			"message": "Secretary of the Department of Home Affairs (PSPF Direction 001-2025, in force since 2025-02-04) restricts DeepSeek's hosted service for government devices, government networks, government staff official use in AU.",
			"backends": ["deepseek-hosted"],
			"citation": {
				"authority": "Secretary of the Department of Home Affairs",
				"instrument": "PSPF Direction 001-2025",
				"date": "2025-02-04",
				"url": "https://australiancybersecuritymagazine.com.au/?p=23096",
				"confidence": "high",
				"action_id": "au-homeaffairs-2025-02-04",
			},
		},
		t.reason("au-homeaffairs-2025-02-04", "weights_cautious", "deny", ["deepseek-self"]),
	})
}

test_government_weights_allowed_when_stance_permits if {
	t.decide("AU", "government", {"stance": "permit"}) == t.expect(["azure-eu", "deepseek-self", "openai"], {
		t.reason("au-homeaffairs-2025-02-04", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("au-homeaffairs-2025-02-04", "weights_permitted", "info", ["deepseek-self"]),
	})
}

test_day_before_the_direction_nothing_applies if {
	t.decide("AU", "government", {"now": t.at("2025-02-03")}) == t.expect(t.all_ids, set())
}

test_private_sector_not_covered if {
	t.decide("AU", "private", {}) == t.expect(t.all_ids, set())
}

test_nsw_department_ban_precedes_commonwealth if {
	t.decide("AU-NSW", "government", {"now": t.at("2025-01-30")}) == t.expect(["azure-eu", "deepseek-self", "openai"], {
		t.reason("au-nsw-dcs-2025-01-30", "hosted", "deny", ["deepseek-hosted"]),
	})
}

test_queensland_estimated_start_and_ambiguous_weights if {
	t.decide("AU-QLD", "government", {"now": t.at("2025-02-01")}) == t.expect(["azure-eu", "openai"], {
		t.reason("au-qld-2025-02", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("au-qld-2025-02", "weights_cautious", "deny", ["deepseek-self"]),
	})
}

test_south_australia_weights_not_addressed if {
	t.decide("AU-SA", "government", {"now": t.at("2025-02-05"), "stance": "permit"}) == t.expect(["azure-eu", "deepseek-self", "openai"], {
		t.reason("au-sa-2025-02-05", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("au-homeaffairs-2025-02-04", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("au-homeaffairs-2025-02-04", "weights_permitted", "info", ["deepseek-self"]),
	})
}
