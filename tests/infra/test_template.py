"""Reads infra/template.yaml (with cfn-lint's decoder, which understands the
intrinsic-function tags) and proves what the template promises: least
privilege per function, every queue with a dead-letter queue and the stack
key, every table encrypted with the stack key and recoverable, and every
throughput parameter reaching the resource it tunes.

Run by `make test` (scripts/infra-lint.sh) with the infra venv's Python."""

import json
import pathlib
import unittest

from cfnlint.decode import decode

TEMPLATE = pathlib.Path(__file__).resolve().parents[2] / "infra" / "template.yaml"

# What each function may touch: the specification this test holds the template to.
# "tables" are the tables it names at all, "writes" those it may also write.
ALLOWED = {
    "ConsentFunction": {
        # Public: it stores the sealed request (ActivityTable) and queues it for the sender; it never
        # mails. The confirmation (POST /confirm/{token}) writes the ledger entry and the contact.
        "tables": {"ContactsTable", "ConsentTable", "CampaignsTable", "ActivityTable"},
        "writes": {"ContactsTable", "ConsentTable", "CampaignsTable", "ActivityTable"},
        "queues": {"SendQueue"},
        "ses": False,
    },
    "WebhooksFunction": {
        "tables": {"ContactsTable", "ConsentTable", "CampaignsTable", "SuppressionTable", "SendLedgerTable",
                   "ActivityTable"},
        "writes": {"ContactsTable", "ConsentTable", "CampaignsTable", "SuppressionTable", "SendLedgerTable",
                   "ActivityTable"},
        "queues": set(),
        "ses": False,
    },
    "ContactsFunction": {
        # Also the audience estimate (a dry run of fan-out): activity and ledger for behavioural rules.
        "tables": {"ContactsTable", "ConsentTable", "SuppressionTable", "CampaignsTable", "AuditLogTable",
                   "ActivityTable", "SendLedgerTable"},
        "writes": {"ContactsTable", "ConsentTable", "SuppressionTable", "CampaignsTable", "AuditLogTable"},
        "queues": set(),
        "ses": False,
    },
    "CampaignsFunction": {
        "tables": {"CampaignsTable", "SendLedgerTable"},
        "writes": {"CampaignsTable", "SendLedgerTable"},
        "queues": {"FanoutQueue", "SendQueue"},
        "ses": False,
    },
    "FanoutFunction": {
        "tables": {"ContactsTable", "ConsentTable", "SuppressionTable", "CampaignsTable", "SendLedgerTable",
                   "AuditLogTable", "ActivityTable"},
        "writes": {"CampaignsTable", "AuditLogTable"},
        "queues": {"FanoutQueue", "SendQueue"},
        "ses": False,
    },
    "SenderFunction": {
        # Also the consent intake: the contact of a new address, its ledger entry, the intake row
        # and the confirmation-email slot; the confirmation is mailed within the send rate.
        "tables": {"ContactsTable", "ConsentTable", "SuppressionTable", "CampaignsTable", "SendLedgerTable",
                   "AuditLogTable", "ActivityTable"},
        "writes": {"ContactsTable", "ConsentTable", "CampaignsTable", "SendLedgerTable", "AuditLogTable",
                   "ActivityTable"},
        "queues": {"SendQueue", "SendDeadLetterQueue"},
        "ses": True,
    },
    "SesEventsFunction": {
        "tables": {"ContactsTable", "ConsentTable", "CampaignsTable", "SendLedgerTable", "SuppressionTable",
                   "ActivityTable"},
        "writes": {"ContactsTable", "ConsentTable", "CampaignsTable", "SendLedgerTable", "SuppressionTable",
                   "ActivityTable"},
        "queues": {"SesEventsQueue"},  # its own: transient failures back off there
        "ses": False,
    },
}

PSEUDO = {"AWS::AccountId", "AWS::Partition", "AWS::Region", "AWS::StackName", "AWS::URLSuffix"}
SAM_TABLE_POLICIES = {"DynamoDBCrudPolicy", "DynamoDBReadPolicy", "DynamoDBWritePolicy"}
SAM_TABLE_WRITE_POLICIES = {"DynamoDBCrudPolicy", "DynamoDBWritePolicy"}
DYNAMODB_READ_ACTIONS = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan",
                         "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"}
SAM_QUEUE_POLICIES = {"SQSSendMessagePolicy", "SQSPollerPolicy"}


def strings(value):
    """Every string in a value (keys included)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from strings(inner)
    elif isinstance(value, str):
        yield value


def rule_value(value, parameters):
    """Evaluates a Rules expression (the rule-specific functions this template uses) for the
    given parameter values, pseudo parameters (AWS::Region) included, as CloudFormation does."""
    if isinstance(value, dict):
        (function, args), = value.items()
        if function == "Ref":
            return parameters[args]
        evaluated = [rule_value(a, parameters) for a in args]
        if function == "Fn::Not":
            return not evaluated[0]
        if function == "Fn::Equals":
            return str(evaluated[0]) == str(evaluated[1])
        if function == "Fn::Contains":
            return str(evaluated[1]) in [str(v) for v in evaluated[0]]
        if function == "Fn::And":
            return all(evaluated)
        if function == "Fn::Or":
            return any(evaluated)
        raise AssertionError(f"rule function {function} not evaluated by this test")
    if isinstance(value, list):
        return [rule_value(v, parameters) for v in value]
    return value


def load():
    template, matches = decode(str(TEMPLATE))
    assert not matches, matches
    return json.loads(json.dumps(template))


def refs(value):
    """Every logical ID a value refers to (Ref, GetAtt, ${Name} in Sub)."""
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                found |= {inner} - PSEUDO
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {part.split("}")[0].split(".")[0] for part in text.split("${")[1:]} - PSEUDO
                found |= refs(inner[1] if isinstance(inner, list) else {})
            else:
                found |= refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= refs(inner)
    return found


class Template(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = load()
        cls.resources = cls.t["Resources"]

    def of_type(self, kind):
        return {name: r for name, r in self.resources.items() if r["Type"] == kind}

    def test_each_function_names_only_its_own_tables_queues_key_and_ses_identity(self):
        functions = self.of_type("AWS::Serverless::Function")
        self.assertEqual(set(functions), set(ALLOWED))
        tables = set(self.of_type("AWS::DynamoDB::Table"))
        queues = set(self.of_type("AWS::SQS::Queue"))
        for name, function in functions.items():
            allowed = ALLOWED[name]
            seen_tables, seen_writes, seen_queues, ses = set(), set(), set(), False
            for policy in function["Properties"]["Policies"]:
                self.assertIsInstance(policy, dict, f"{name}: managed policy {policy!r} is not allowed")
                for kind, args in policy.items():
                    if kind in SAM_TABLE_POLICIES:
                        seen_tables |= refs(args)
                        if kind in SAM_TABLE_WRITE_POLICIES:
                            seen_writes |= refs(args)
                    elif kind in SAM_QUEUE_POLICIES:
                        seen_queues |= refs(args)
                    elif kind == "Statement":
                        for statement in args:
                            resources = statement["Resource"]
                            resources = resources if isinstance(resources, list) else [resources]
                            self.assertNotIn("*", resources, f"{name}: {statement['Action']} on '*'")
                            named = refs(resources)
                            seen_tables |= named & tables
                            seen_queues |= named & queues
                            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                            if any(a.startswith("dynamodb:") and a not in DYNAMODB_READ_ACTIONS for a in actions):
                                seen_writes |= named & tables
                            if any(a.startswith("kms:") for a in actions):
                                self.assertEqual(named, {"DataKey"}, f"{name}: KMS only on the stack key")
                                # Only the contacts function (key rotation, `carepost keys rotate`) may rotate the key.
                                rotation = {"kms:RotateKeyOnDemand", "kms:DescribeKey"} if name == "ContactsFunction" else set()
                                self.assertLessEqual(set(actions), {"kms:GenerateDataKey", "kms:Decrypt"} | rotation)
                            if any(a.startswith("ses:") for a in actions):
                                ses = True
                                self.assertEqual(named, {"SenderDomain", "MailConfigurationSet"}, name)
                                self.assertLessEqual(set(actions), {"ses:SendEmail", "ses:SendRawEmail"})
                    else:
                        self.fail(f"{name}: unexpected policy {kind}")
            self.assertEqual(seen_tables, allowed["tables"], f"{name} tables")
            self.assertEqual(seen_writes, allowed["writes"], f"{name} writes")
            self.assertEqual(seen_queues, allowed["queues"], f"{name} queues")
            self.assertEqual(ses, allowed["ses"], f"{name} SES")
        # The public consent function has no ses: action at all, on any resource.
        consent_policies = functions["ConsentFunction"]["Properties"]["Policies"]
        self.assertEqual([t for t in strings(consent_policies) if t.lower().startswith("ses:")], [])

    def test_the_public_consent_function_cannot_send_mail_and_only_queues_for_the_sender(self):
        policies = self.resources["ConsentFunction"]["Properties"]["Policies"]
        # No ses: action, SES resource or SES policy template (SESCrudPolicy, SESBulkTemplatedCrudPolicy …),
        # and no policy attached to its role from elsewhere in the template.
        for text in strings(policies):
            self.assertFalse(text.lower().startswith("ses:"), text)
            self.assertNotIn(":ses:", text.lower(), text)
        for policy in policies:
            for kind in policy if isinstance(policy, dict) else [policy]:
                self.assertFalse(kind.upper().startswith("SES"), kind)
        for name, resource in self.resources.items():
            if name != "ConsentFunction":
                self.assertNotIn("ConsentFunctionRole", refs(resource), name)
        # The send queue, send only (SQSSendMessagePolicy; no receive or delete).
        queue_policies = [p for p in policies if set(p) & SAM_QUEUE_POLICIES]
        self.assertEqual(queue_policies, [{"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["SendQueue", "QueueName"]}}}])
        # Its queue URL comes from Globals, as for every function that sends to a queue.
        env = self.t["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(env["SEND_QUEUE_URL"], {"Ref": "SendQueue"})
        own = self.resources["ConsentFunction"]["Properties"].get("Environment", {}).get("Variables", {})
        self.assertNotIn("SEND_QUEUE_URL", own)

    def test_the_sender_can_take_in_a_queued_consent_request(self):
        policies = self.resources["SenderFunction"]["Properties"]["Policies"]
        crud = {refs(p["DynamoDBCrudPolicy"]).pop() for p in policies if "DynamoDBCrudPolicy" in p}
        self.assertLessEqual({"ContactsTable", "ConsentTable", "ActivityTable"}, crud)
        statements = [s for p in policies for s in p.get("Statement", [])]
        kms = [s for s in statements if any(a.startswith("kms:") for a in s["Action"])]
        self.assertEqual([set(s["Action"]) for s in kms], [{"kms:GenerateDataKey", "kms:Decrypt"}])
        self.assertEqual(refs(kms[0]["Resource"]), {"DataKey"})
        self.assertTrue(any("ses:SendEmail" in s["Action"] for s in statements))

    def test_the_consent_limits_reach_the_functions_that_read_them(self):
        env = self.t["Globals"]["Function"]["Environment"]["Variables"]
        limits = {"ConsentLimitPerIpPerHour": ("CONSENT_LIMIT_PER_IP_PER_HOUR", 20),
                  "ConsentLimitPerAddressPerHour": ("CONSENT_LIMIT_PER_ADDRESS_PER_HOUR", 5)}
        for parameter, (variable, default) in limits.items():
            p = self.t["Parameters"][parameter]
            self.assertEqual((p["Type"], p["Default"], p["MinValue"]), ("Number", default, 1), parameter)
            # The template's convention: the parameter's name in SCREAMING_SNAKE.
            self.assertEqual(variable, "".join("_" + c if c.isupper() else c.upper() for c in parameter).lstrip("_"))
            self.assertEqual(env[variable], {"Ref": parameter})
            for function in ["ConsentFunction", "SenderFunction"]:
                own = self.resources[function]["Properties"].get("Environment", {}).get("Variables", {})
                self.assertNotIn(variable, own, function)  # Globals' value reaches it unchanged

    def refused(self, **values):
        """The AssertDescriptions of the rules that refuse these parameter values (defaults otherwise)."""
        parameters = {name: str(p.get("Default", "")) for name, p in self.t["Parameters"].items()}
        parameters["AWS::Region"] = values.pop("region", "us-east-1")
        parameters.update({name: str(value) for name, value in values.items()})
        found = []
        for rule in self.t["Rules"].values():
            if "RuleCondition" in rule and not rule_value(rule["RuleCondition"], parameters):
                continue
            found += [a["AssertDescription"] for a in rule["Assertions"] if not rule_value(a["Assert"], parameters)]
        return found

    def test_waf_is_off_by_default_and_only_its_optional_resources_depend_on_it(self):
        p = self.t["Parameters"]["WafRateLimitPerIp"]
        self.assertEqual((p["Type"], p["Default"], p["MinValue"]), ("Number", 0, 0))
        self.assertEqual(self.t["Conditions"]["WafEnabled"], {"Fn::Not": [{"Fn::Equals": [{"Ref": "WafRateLimitPerIp"}, "0"]}]})
        waf = {name for name, r in self.resources.items()
               if r["Type"].startswith(("AWS::WAFv2::", "AWS::CloudFront::"))}
        self.assertEqual(waf, {"FrontWebAcl", "FrontDistribution"})
        conditional = {name for name, r in self.resources.items() if "Condition" in r}
        self.assertEqual(conditional, waf)
        for name in waf:
            self.assertEqual(self.resources[name]["Condition"], "WafEnabled", name)
        # An HTTP API stage cannot take a web ACL: nothing associates one (the distribution carries it).
        self.assertFalse(self.of_type("AWS::WAFv2::WebACLAssociation"))
        output = self.t["Outputs"]["WafFrontUrl"]
        self.assertEqual(output["Condition"], "WafEnabled")
        self.assertEqual(output["Value"], {"Fn::Sub": "https://${FrontDistribution.DomainName}"})
        self.assertIn("PublicBaseUrl", output["Description"])

    def test_the_waf_rule_limits_each_client_ip_on_the_consent_path_from_the_parameter(self):
        acl = self.resources["FrontWebAcl"]["Properties"]
        self.assertEqual(acl["Scope"], "CLOUDFRONT")
        self.assertEqual(acl["DefaultAction"], {"Allow": {}})
        self.assertTrue(acl["VisibilityConfig"]["CloudWatchMetricsEnabled"])
        (rule,) = acl["Rules"]
        self.assertTrue(rule["VisibilityConfig"]["CloudWatchMetricsEnabled"])
        rate = rule["Statement"]["RateBasedStatement"]
        self.assertEqual(rate["AggregateKeyType"], "IP")
        self.assertEqual(rate["Limit"], {"Ref": "WafRateLimitPerIp"})
        self.assertEqual(rate["EvaluationWindowSec"], 300)  # the parameter counts per 5 minutes
        match = rate["ScopeDownStatement"]["ByteMatchStatement"]
        self.assertEqual((match["FieldToMatch"], match["PositionalConstraint"], match["SearchString"]),
                         ({"UriPath": {}}, "STARTS_WITH", "/v1/consent"))
        self.assertEqual(rule["Action"]["Block"]["CustomResponse"]["ResponseCode"], 429)

    def test_the_distribution_fronts_the_api_uncached_over_https_with_the_web_acl(self):
        config = self.resources["FrontDistribution"]["Properties"]["DistributionConfig"]
        self.assertEqual(config["WebACLId"], {"Fn::GetAtt": ["FrontWebAcl", "Arn"]})
        (origin,) = config["Origins"]
        self.assertEqual(origin["DomainName"], {"Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"})
        self.assertEqual(origin["CustomOriginConfig"]["OriginProtocolPolicy"], "https-only")
        behavior = config["DefaultCacheBehavior"]
        self.assertEqual(behavior["TargetOriginId"], origin["Id"])
        self.assertEqual(behavior["ViewerProtocolPolicy"], "redirect-to-https")
        self.assertEqual(set(behavior["AllowedMethods"]), {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"})
        self.assertEqual(behavior["CachePolicyId"], "4135ea2d-6df8-44a3-9df3-4b5a84be39ad")  # Managed-CachingDisabled
        self.assertEqual(behavior["OriginRequestPolicyId"], "b689b0a8-53d0-40ab-baf2-68738e2966ac")  # AllViewerExceptHostHeader
        self.assertNotIn("CacheBehaviors", config)

    def test_rules_refuse_a_waf_limit_below_ten_and_waf_outside_us_east_1(self):
        self.assertEqual(self.refused(), [])
        self.assertEqual(self.refused(region="eu-west-1"), [])  # WAF off: any Region
        self.assertEqual(self.refused(WafRateLimitPerIp=10), [])
        self.assertEqual(self.refused(WafRateLimitPerIp=2000), [])
        for low in range(1, 10):
            (description,) = self.refused(WafRateLimitPerIp=low)
            self.assertIn("at least 10", description)
        (description,) = self.refused(WafRateLimitPerIp=100, region="eu-west-1")
        self.assertIn("us-east-1", description)
        # The older rule still reads the same.
        self.assertEqual(len(self.refused(SenderBatchSize=11, SenderBatchingWindowSeconds=0)), 1)

    def test_every_queue_has_a_dead_letter_queue_and_the_stack_key(self):
        queues = self.of_type("AWS::SQS::Queue")
        dead_letter = {name for name in queues if name.endswith("DeadLetterQueue")}
        working = set(queues) - dead_letter
        self.assertEqual(len(working), 3)
        for name, queue in queues.items():
            self.assertEqual(queue["Properties"].get("KmsMasterKeyId"), {"Ref": "DataKey"}, name)
        for name in working:
            redrive = self.resources[name]["Properties"]["RedrivePolicy"]
            self.assertIn(refs(redrive["deadLetterTargetArn"]).pop(), dead_letter, name)
            self.assertEqual(redrive["maxReceiveCount"], {"Ref": "MaxReceiveCount"}, name)
        self.assertEqual(self.resources["SesEventsTopic"]["Properties"]["KmsMasterKeyId"], {"Ref": "DataKey"})

    def test_every_table_is_encrypted_with_the_stack_key_and_recoverable(self):
        tables = self.of_type("AWS::DynamoDB::Table")
        self.assertEqual(len(tables), 7)
        for name, table in tables.items():
            p = table["Properties"]
            self.assertEqual(p["SSESpecification"], {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Ref": "DataKey"}}, name)
            self.assertEqual(p["PointInTimeRecoverySpecification"], {"PointInTimeRecoveryEnabled": True}, name)
            self.assertEqual(p["DeletionProtectionEnabled"], {"Ref": "DeletionProtection"}, name)

    def test_every_throughput_parameter_reaches_what_it_tunes(self):
        env = self.t["Globals"]["Function"]["Environment"]["Variables"]
        knobs = {
            "SendRatePerSecond": "SEND_RATE_PER_SECOND",
            "SenderMaxConcurrency": "SENDER_MAX_CONCURRENCY",
            "SenderBatchSize": "SENDER_BATCH_SIZE",
            "SenderBatchingWindowSeconds": "SENDER_BATCHING_WINDOW_SECONDS",
            "FanoutShards": "FANOUT_SHARDS",
            "FanoutMaxConcurrency": "FANOUT_MAX_CONCURRENCY",
            "VisibilityTimeoutSeconds": "VISIBILITY_TIMEOUT_SECONDS",
            "MaxReceiveCount": "MAX_RECEIVE_COUNT",
        }
        for parameter, variable in knobs.items():
            self.assertIn(parameter, self.t["Parameters"])
            self.assertEqual(env[variable], {"Ref": parameter})
        sender = self.resources["SenderFunction"]["Properties"]["Events"]["Jobs"]["Properties"]
        self.assertEqual(sender["ScalingConfig"]["MaximumConcurrency"], {"Ref": "SenderMaxConcurrency"})
        self.assertEqual(sender["BatchSize"], {"Ref": "SenderBatchSize"})
        self.assertEqual(sender["MaximumBatchingWindowInSeconds"], {"Ref": "SenderBatchingWindowSeconds"})
        fanout = self.resources["FanoutFunction"]["Properties"]["Events"]["Shards"]["Properties"]
        self.assertEqual(fanout["ScalingConfig"]["MaximumConcurrency"], {"Ref": "FanoutMaxConcurrency"})
        for function in ["FanoutFunction", "SenderFunction", "SesEventsFunction"]:
            events = self.resources[function]["Properties"]["Events"]
            for event in events.values():
                self.assertEqual(event["Properties"]["FunctionResponseTypes"], ["ReportBatchItemFailures"], function)
            self.assertEqual(
                self.resources[function]["Properties"]["Timeout"],
                {"Fn::FindInMap": ["FunctionTimeout", {"Ref": "VisibilityTimeoutSeconds"}, "Seconds"]},
                function,
            )
        for name in ["FanoutQueue", "SendQueue", "SesEventsQueue"]:
            self.assertEqual(self.resources[name]["Properties"]["VisibilityTimeout"], {"Ref": "VisibilityTimeoutSeconds"})

    def test_visibility_is_at_least_six_times_the_queue_functions_timeout_for_every_allowed_value(self):
        allowed = self.t["Parameters"]["VisibilityTimeoutSeconds"]["AllowedValues"]
        mapping = self.t["Mappings"]["FunctionTimeout"]
        self.assertEqual({str(v) for v in allowed}, set(mapping))
        for visibility, row in mapping.items():
            self.assertGreaterEqual(int(visibility), 6 * row["Seconds"], visibility)
            self.assertLessEqual(row["Seconds"], 900)

    def test_parameter_constraints_refuse_invalid_values(self):
        p = self.t["Parameters"]
        self.assertEqual(p["SenderMaxConcurrency"]["MinValue"], 2)
        self.assertEqual(p["FanoutMaxConcurrency"]["MinValue"], 2)
        self.assertEqual(p["MaxReceiveCount"]["MinValue"], 5)
        self.assertEqual(p["SendRatePerSecond"]["MinValue"], 1)

    def test_mail_requires_tls_and_every_event_type_is_published(self):
        config = self.resources["MailConfigurationSet"]["Properties"]
        self.assertEqual(config["DeliveryOptions"], {"TlsPolicy": "REQUIRE"})
        destination = self.resources["MailEventDestination"]["Properties"]["EventDestination"]
        self.assertEqual(
            set(destination["MatchingEventTypes"]),
            {"send", "reject", "bounce", "complaint", "delivery", "open", "click", "renderingFailure",
             "deliveryDelay", "subscription"},
        )

    def test_admin_routes_use_iam_and_public_routes_are_the_known_few(self):
        public = set()
        for name, function in self.of_type("AWS::Serverless::Function").items():
            for event in function["Properties"].get("Events", {}).values():
                if event["Type"] != "HttpApi":
                    continue
                route = (event["Properties"]["Method"], event["Properties"]["Path"])
                authorizer = event["Properties"].get("Auth", {}).get("Authorizer")
                if route[1].startswith(("/v1/contacts", "/v1/campaigns", "/v1/audit", "/v1/keys", "/v1/schema")):
                    self.assertEqual(authorizer, "AWS_IAM", route)
                else:
                    public.add(route)
        self.assertEqual(
            public,
            {("POST", "/v1/consent"), ("GET", "/confirm/{token}"), ("POST", "/confirm/{token}"), ("GET", "/thanks"), ("GET", "/forms/{form_id}"), ("GET", "/privacy"),
             ("GET", "/u/{token}"), ("POST", "/u/{token}"), ("GET", "/t/o/{token}"), ("GET", "/t/c/{token}"),
             ("GET", "/preferences/{token}"), ("POST", "/preferences/{token}"),
             ("GET", "/healthz")},
        )

    def http_routes(self):
        """Every route key ("METHOD /path") a function serves on HttpApi, with the function's name."""
        routes = {}
        for name, function in self.of_type("AWS::Serverless::Function").items():
            for event in function["Properties"].get("Events", {}).values():
                if event["Type"] == "HttpApi":
                    self.assertEqual(event["Properties"]["ApiId"], {"Ref": "HttpApi"}, name)
                    routes[f"{event['Properties']['Method']} {event['Properties']['Path']}"] = name
        return routes

    def test_the_consent_route_has_a_throttle_of_its_own_and_unsubscribe_is_not_under_it(self):
        api = self.resources["HttpApi"]["Properties"]
        default, per_route = api["DefaultRouteSettings"], api["RouteSettings"]
        consent = per_route["POST /v1/consent"]
        self.assertEqual(consent, {"ThrottlingRateLimit": {"Ref": "ConsentRouteRateLimit"},
                                   "ThrottlingBurstLimit": {"Ref": "ConsentRouteBurstLimit"}})
        # A separate budget: other parameters than the default route settings', and smaller by default.
        self.assertEqual(default, {"ThrottlingRateLimit": {"Ref": "ApiRateLimit"},
                                   "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"}})
        p = self.t["Parameters"]
        for route_limit, api_limit in [("ConsentRouteRateLimit", "ApiRateLimit"), ("ConsentRouteBurstLimit", "ApiBurstLimit")]:
            self.assertEqual(p[route_limit]["Type"], "Number")
            self.assertEqual(p[route_limit]["MinValue"], 1)
            self.assertLess(p[route_limit]["Default"], p[api_limit]["Default"], route_limit)
        self.assertEqual((p["ConsentRouteRateLimit"]["Default"], p["ConsentRouteBurstLimit"]["Default"]), (10, 20))
        # The key names the consent function's route on this API, and nothing else is under a route throttle.
        routes = self.http_routes()
        self.assertEqual(routes["POST /v1/consent"], "ConsentFunction")
        self.assertEqual(set(per_route), {"POST /v1/consent"})
        # Unsubscribe (the page and RFC 8058 one-click) stays under the default settings only,
        # and no event adds route settings of its own (SAM would merge them into the API's).
        unsubscribe = {route for route, name in routes.items() if name == "WebhooksFunction" and " /u/" in route}
        self.assertEqual(unsubscribe, {"GET /u/{token}", "POST /u/{token}"})
        self.assertFalse(unsubscribe & set(per_route))
        for name, function in self.of_type("AWS::Serverless::Function").items():
            for event in function["Properties"].get("Events", {}).values():
                self.assertNotIn("RouteSettings", event["Properties"], name)

    def test_the_operator_policy_invokes_every_admin_route_and_no_public_one(self):
        import fnmatch
        policy = self.resources["OperatorPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        self.assertEqual([s["Action"] for s in policy], ["execute-api:Invoke"])
        prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/"
        patterns = []
        for resource in policy[0]["Resource"]:
            text = resource["Fn::Sub"]
            self.assertTrue(text.startswith(prefix), text)
            patterns.append(text[len(prefix):])
        for function in self.of_type("AWS::Serverless::Function").values():
            for event in function["Properties"].get("Events", {}).values():
                if event["Type"] != "HttpApi":
                    continue
                method, path = event["Properties"]["Method"], event["Properties"]["Path"]
                # API Gateway matches a request's actual path; a path parameter stands for one or more characters.
                request = f"{method}{path}".replace("{id}", "x").replace("{token}", "x").replace("{form_id}", "x")
                allowed = any(fnmatch.fnmatchcase(request, p) for p in patterns)
                admin = event["Properties"].get("Auth", {}).get("Authorizer") == "AWS_IAM"
                self.assertEqual(allowed, admin, (method, path))
        self.assertEqual(self.t["Outputs"]["OperatorPolicyArn"]["Value"], {"Ref": "OperatorPolicy"})

    def test_ledger_and_activity_expire_by_ttl_and_evidence_never_does(self):
        tables = self.of_type("AWS::DynamoDB::Table")
        expiring = {name for name, t in tables.items()
                    if t["Properties"].get("TimeToLiveSpecification", {}).get("Enabled")}
        self.assertEqual(expiring, {"SendLedgerTable", "ActivityTable"})
        for name in expiring:
            self.assertEqual(tables[name]["Properties"]["TimeToLiveSpecification"]["AttributeName"], "expires_at")
        variables = self.t["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(variables["RETENTION_DAYS"], {"Ref": "RetentionDays"})
        self.assertEqual(self.t["Parameters"]["RetentionDays"]["Default"], 400)

    def test_every_skipped_checkov_check_carries_a_reason(self):
        for name, resource in self.resources.items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                self.assertTrue(skip.get("comment", "").strip(), f"{name}: {skip.get('id')} without a reason")


if __name__ == "__main__":
    unittest.main()
