"""Reads infra/template.yaml (with cfn-lint's decoder, which understands the
intrinsic-function tags) and proves what the template promises: least
privilege per function, every queue with a dead-letter queue and the stack
key, every table encrypted with the stack key and recoverable, and every
throughput parameter reaching the resource it tunes.

Run by `make test` (scripts/infra-lint.sh) with the infra venv's Python."""

import copy
import json
import os
import pathlib
import re
import unittest

from cfnlint.decode import decode

TEMPLATE = pathlib.Path(__file__).resolve().parents[2] / "infra" / "template.yaml"

# What each function may touch: the specification this test holds the template to.
# "tables" are the tables it names at all, "writes" those it may also write.
ALLOWED = {
    "ConsentFunction": {
        # Public: it stores the sealed request (ActivityTable) and queues it for the sender; it never
        # mails. The confirmation (POST /confirm/{token}) writes the ledger entry and the contact.
        # A confirmed sign-up enters the live journeys it starts (JourneysTable).
        "tables": {"ContactsTable", "ConsentTable", "CampaignsTable", "ActivityTable", "JourneysTable"},
        "writes": {"ContactsTable", "ConsentTable", "CampaignsTable", "ActivityTable", "JourneysTable"},
        "queues": {"SendQueue"},
        "ses": False,
    },
    "WebhooksFunction": {
        # Also the secure message page: its codes go out through the notice configuration set, and
        # every view is written to the audit log.
        "tables": {"ContactsTable", "ConsentTable", "CampaignsTable", "SuppressionTable", "SendLedgerTable",
                   "ActivityTable", "AuditLogTable"},
        "writes": {"ContactsTable", "ConsentTable", "CampaignsTable", "SuppressionTable", "SendLedgerTable",
                   "ActivityTable", "AuditLogTable"},
        "queues": set(),
        "ses": True,
    },
    "ContactsFunction": {
        # Also the audience estimate (a dry run of fan-out): activity and ledger for behavioural rules;
        # the journey simulation, which reads the journey (JourneysTable) and judges contacts alike; and
        # journey events (POST /v1/events), recorded in JourneysTable with the enrolments they start.
        "tables": {"ContactsTable", "ConsentTable", "SuppressionTable", "CampaignsTable", "AuditLogTable",
                   "ActivityTable", "SendLedgerTable", "JourneysTable"},
        "writes": {"ContactsTable", "ConsentTable", "SuppressionTable", "CampaignsTable", "AuditLogTable",
                   "JourneysTable"},
        "queues": set(),
        "ses": False,
    },
    "CampaignsFunction": {
        "tables": {"CampaignsTable", "SendLedgerTable", "JourneysTable"},
        "writes": {"CampaignsTable", "SendLedgerTable", "JourneysTable"},
        "queues": {"FanoutQueue", "SendQueue"},
        "ses": False,
    },
    "FanoutFunction": {
        # Also the journey timer: it moves due enrolments (JourneysTable) and queues their sends.
        "tables": {"ContactsTable", "ConsentTable", "SuppressionTable", "CampaignsTable", "SendLedgerTable",
                   "AuditLogTable", "ActivityTable", "JourneysTable"},
        "writes": {"CampaignsTable", "AuditLogTable", "JourneysTable"},
        "queues": {"FanoutQueue", "SendQueue"},
        "ses": False,
    },
    "SenderFunction": {
        # Also the consent intake: the contact of a new address, its ledger entry, the intake row
        # and the confirmation-email slot; the confirmation is mailed within the send rate.
        "tables": {"ContactsTable", "ConsentTable", "SuppressionTable", "CampaignsTable", "SendLedgerTable",
                   "AuditLogTable", "ActivityTable", "JourneysTable"},
        "writes": {"ContactsTable", "ConsentTable", "CampaignsTable", "SendLedgerTable", "AuditLogTable",
                   "ActivityTable", "JourneysTable"},
        "queues": {"SendQueue", "SendDeadLetterQueue"},
        "ses": True,
    },
    "SesEventsFunction": {
        "tables": {"ContactsTable", "ConsentTable", "CampaignsTable", "SendLedgerTable", "SuppressionTable",
                   "ActivityTable"},
        "writes": {"ContactsTable", "ConsentTable", "CampaignsTable", "SendLedgerTable", "SuppressionTable",
                   "ActivityTable"},
        # Its own (transient failures back off there), and the send queue for secure message notices.
        "queues": {"SesEventsQueue", "SendQueue"},
        "ses": False,
    },
}

# Every route of the HTTP API and the function serving it: the specification the Route resources are held to.
ROUTES = {
    "POST /v1/consent": "ConsentFunction",
    "GET /confirm/{token}": "ConsentFunction",
    "POST /confirm/{token}": "ConsentFunction",
    "GET /thanks": "ConsentFunction",
    "GET /forms/{form_id}": "ConsentFunction",
    "GET /privacy": "ConsentFunction",
    "GET /u/{token}": "WebhooksFunction",
    "GET /s/{token}": "WebhooksFunction",
    "POST /s/{token}": "WebhooksFunction",
    "POST /s/{token}/code": "WebhooksFunction",
    "POST /u/{token}": "WebhooksFunction",
    "GET /preferences/{token}": "WebhooksFunction",
    "POST /preferences/{token}": "WebhooksFunction",
    "GET /t/o/{token}": "WebhooksFunction",
    "GET /t/c/{token}": "WebhooksFunction",
    "GET /healthz": "WebhooksFunction",
    "PUT /v1/contacts/{id}": "ContactsFunction",
    "GET /v1/contacts/{id}": "ContactsFunction",
    "GET /v1/contacts": "ContactsFunction",
    "POST /v1/contacts:batch": "ContactsFunction",
    "POST /v1/contacts:import-consent": "ContactsFunction",
    "DELETE /v1/contacts/{id}": "ContactsFunction",
    "GET /v1/contacts/{id}/consent": "ContactsFunction",
    "POST /v1/contacts/{id}/consent/withdraw": "ContactsFunction",
    "GET /v1/audit": "ContactsFunction",
    "GET /v1/audit/verify": "ContactsFunction",
    "PUT /v1/contacts/{id}/hipaa-authorization": "ContactsFunction",
    "DELETE /v1/contacts/{id}/hipaa-authorization": "ContactsFunction",
    "POST /v1/campaigns/{id}/dry-run": "ContactsFunction",
    "GET /v1/schema": "ContactsFunction",
    "POST /v1/keys/rotate": "ContactsFunction",
    "POST /v1/keys/reseal": "ContactsFunction",
    "POST /v1/campaigns": "CampaignsFunction",
    "GET /v1/campaigns": "CampaignsFunction",
    "POST /v1/campaigns/preview": "CampaignsFunction",
    "GET /v1/campaigns/{id}": "CampaignsFunction",
    "GET /v1/campaigns/{id}/report": "CampaignsFunction",
    "POST /v1/campaigns/{id}/launch": "CampaignsFunction",
    "POST /v1/campaigns/{id}/pause": "CampaignsFunction",
    "POST /v1/campaigns/{id}/resume": "CampaignsFunction",
    "POST /v1/campaigns/{id}/retry-failed": "CampaignsFunction",
    "POST /v1/campaigns/{id}/cancel": "CampaignsFunction",
    "POST /v1/journeys": "CampaignsFunction",
    "GET /v1/journeys": "CampaignsFunction",
    "GET /v1/journeys/{id}": "CampaignsFunction",
    "PUT /v1/journeys/{id}": "CampaignsFunction",
    "GET /v1/journeys/{id}/report": "CampaignsFunction",
    "POST /v1/journeys/{id}/launch": "CampaignsFunction",
    "POST /v1/journeys/{id}/pause": "CampaignsFunction",
    "POST /v1/journeys/{id}/resume": "CampaignsFunction",
    "POST /v1/journeys/{id}/simulate": "ContactsFunction",
    "POST /v1/events": "ContactsFunction",
}
ADMIN_PREFIXES = ("/v1/contacts", "/v1/campaigns", "/v1/journeys", "/v1/events", "/v1/audit", "/v1/keys", "/v1/schema")

# Every optional resource and the condition it is created under.
OPTIONAL = {
    "FrontWebAcl": "WafEnabled",
    "FrontDistribution": "WafEnabled",
    "DomainCertificate": "CreateDomainCertificate",
    "ApiDomain": "DomainOnApi",
    "ApiDomainMapping": "DomainOnApi",
    "DomainRecord": "PublishDomainRecord",
    "SenderIdentity": "SenderIdentityEnabled",
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


def rule_value(value, parameters, conditions=None):
    """Evaluates a Rules or Conditions expression (the functions this template uses) for the
    given parameter values, pseudo parameters (AWS::Region) included, as CloudFormation does;
    a Conditions expression may name another condition (conditions: the template's)."""
    if isinstance(value, dict):
        (function, args), = value.items()
        if function == "Ref":
            return parameters[args]
        if function == "Condition":
            return rule_value(conditions[args], parameters, conditions)
        evaluated = [rule_value(a, parameters, conditions) for a in args]
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
        return [rule_value(v, parameters, conditions) for v in value]
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


def depends_on(resource):
    value = resource.get("DependsOn", [])
    return [value] if isinstance(value, str) else value


def translated(template):
    """What CloudFormation receives: the template after SAM's own transform (samtranslator, offline)."""
    from samtranslator.translator.transform import transform

    class Policies:  # the managed policies SAM attaches; no IAM call
        def load(self):
            return {name: f"arn:aws:iam::aws:policy/{name}" for name in
                    ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSXRayDaemonWriteAccess"]}

    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/carepost.zip"  # as after `sam package`
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(template, {}, Policies())


def cycles(template):
    """The dependency cycles (Ref, GetAtt, Sub, DependsOn) among a CloudFormation template's resources."""
    resources = template["Resources"]
    deps = {name: (refs(r.get("Properties", {})) | set(depends_on(r))) & set(resources) for name, r in resources.items()}
    found, state, path = [], {}, []

    def visit(name):
        state[name] = "open"
        path.append(name)
        for dep in sorted(deps[name]):
            if state.get(dep) == "open":
                found.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        path.pop()
        state[name] = "done"

    for name in resources:
        if name not in state:
            visit(name)
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
                                # The sender mails through both sets; the webhooks function (secure message
                                # codes) only through the notice set, which never carries PHI.
                                sets = {"SenderFunction": {"MailConfigurationSet", "NoticeConfigurationSet"},
                                        "WebhooksFunction": {"NoticeConfigurationSet"}}[name]
                                self.assertEqual(named, {"SenderDomain"} | sets, name)
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

    def test_the_consent_limits_and_the_minimum_cell_reach_the_functions_that_read_them(self):
        env = self.t["Globals"]["Function"]["Environment"]["Variables"]
        limits = {"ConsentLimitPerIpPerHour": ("CONSENT_LIMIT_PER_IP_PER_HOUR", 20),
                  "ConsentLimitPerAddressPerHour": ("CONSENT_LIMIT_PER_ADDRESS_PER_HOUR", 5),
                  "MinCellSize": ("MIN_CELL_SIZE", 11)}
        for parameter, (variable, default) in limits.items():
            p = self.t["Parameters"][parameter]
            self.assertEqual((p["Type"], p["Default"], p["MinValue"]), ("Number", default, 1), parameter)
            # The template's convention: the parameter's name in SCREAMING_SNAKE.
            self.assertEqual(variable, "".join("_" + c if c.isupper() else c.upper() for c in parameter).lstrip("_"))
            self.assertEqual(env[variable], {"Ref": parameter})
            for function in ["ConsentFunction", "SenderFunction"]:
                own = self.resources[function]["Properties"].get("Environment", {}).get("Variables", {})
                self.assertNotIn(variable, own, function)  # Globals' value reaches it unchanged

    def parameters(self, **values):
        """Parameter values as CloudFormation would see them: defaults, pseudo parameters, then these."""
        parameters = {name: str(p.get("Default", "")) for name, p in self.t["Parameters"].items()}
        parameters["AWS::Region"] = values.pop("region", "us-east-1")
        parameters.update({name: str(value) for name, value in values.items()})
        return parameters

    def condition(self, name, **values):
        return rule_value(self.t["Conditions"][name], self.parameters(**values), self.t["Conditions"])

    def resolve(self, value, **values):
        """A value with its Fn::If branches taken as CloudFormation would take them for these parameters
        (a property resolving to AWS::NoValue is left out)."""
        parameters = self.parameters(**values)
        if isinstance(value, dict):
            if set(value) == {"Fn::If"}:
                condition, true, false = value["Fn::If"]
                taken = rule_value(self.t["Conditions"][condition], parameters, self.t["Conditions"])
                return self.resolve(true if taken else false, **values)
            resolved = {k: self.resolve(v, **values) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v != {"Ref": "AWS::NoValue"}}
        if isinstance(value, list):
            return [self.resolve(v, **values) for v in value]
        return value

    def refused(self, **values):
        """The AssertDescriptions of the rules that refuse these parameter values (defaults otherwise)."""
        parameters = self.parameters(**values)
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
        conditional = {name: r["Condition"] for name, r in self.resources.items() if "Condition" in r}
        self.assertEqual(conditional, OPTIONAL)
        self.assertEqual({name for name, condition in conditional.items() if condition == "WafEnabled"}, waf)
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
        self.assertEqual(self.of_type("AWS::SNS::Topic"), {}, "SES events reach the queue through EventBridge")

    def test_every_table_is_encrypted_with_the_stack_key_and_recoverable(self):
        tables = self.of_type("AWS::DynamoDB::Table")
        self.assertEqual(len(tables), 8)
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
        events = self.resources["SesEventsFunction"]["Properties"]["Events"]["Events"]["Properties"]
        # The batch's counts are written once per batch: large batches, a second's wait.
        self.assertEqual((events["BatchSize"], events["MaximumBatchingWindowInSeconds"]), (100, 1))
        self.assertGreaterEqual(min(row["Seconds"] for row in self.t["Mappings"]["FunctionTimeout"].values()), 10)
        fanout = self.resources["FanoutFunction"]["Properties"]["Events"]["Shards"]["Properties"]
        self.assertEqual(fanout["ScalingConfig"]["MaximumConcurrency"], {"Ref": "FanoutMaxConcurrency"})
        for function in ["FanoutFunction", "SenderFunction", "SesEventsFunction"]:
            events = self.resources[function]["Properties"]["Events"]
            for event in events.values():
                if event["Type"] == "SQS":
                    self.assertEqual(event["Properties"]["FunctionResponseTypes"], ["ReportBatchItemFailures"], function)
            self.assertEqual(
                self.resources[function]["Properties"]["Timeout"],
                {"Fn::FindInMap": ["FunctionTimeout", {"Ref": "VisibilityTimeoutSeconds"}, "Seconds"]},
                function,
            )
        for name in ["FanoutQueue", "SendQueue", "SesEventsQueue"]:
            self.assertEqual(self.resources[name]["Properties"]["VisibilityTimeout"], {"Ref": "VisibilityTimeoutSeconds"})

    def test_the_journey_timer_sweeps_every_minute_through_the_fanout_function_and_nothing_else_is_scheduled(self):
        scheduled = {
            (name, event_name): event["Properties"]
            for name, function in self.of_type("AWS::Serverless::Function").items()
            for event_name, event in function["Properties"].get("Events", {}).items()
            if event["Type"] in {"Schedule", "ScheduleV2"}
        }
        self.assertEqual(set(scheduled), {("FanoutFunction", "JourneyTimer")})
        timer = scheduled[("FanoutFunction", "JourneyTimer")]
        self.assertEqual(timer["ScheduleExpression"], "rate(1 minute)")
        # The input the fanout function recognises (runtime::lambda::JOURNEY_SWEEP_INPUT).
        self.assertEqual(json.loads(timer["Input"]), {"carepost": "journey-sweep"})
        self.assertEqual(timer["RetryPolicy"]["MaximumRetryAttempts"], 0, "the next tick is the retry")
        self.assertEqual(timer["KmsKeyArn"], {"Fn::GetAtt": ["DataKey", "Arn"]})

    def test_an_alarm_says_when_the_journey_timer_stops_invoking_the_fanout_function(self):
        alarm = self.resources["JourneyTimerStoppedAlarm"]["Properties"]
        self.assertEqual((alarm["Namespace"], alarm["MetricName"]), ("AWS/Lambda", "Invocations"))
        self.assertEqual(alarm["Dimensions"], [{"Name": "FunctionName", "Value": {"Ref": "FanoutFunction"}}])
        self.assertEqual(alarm["ComparisonOperator"], "LessThanThreshold")
        self.assertEqual(alarm["Threshold"], 1)
        # No data at all is the failure it is for: a timer that never fires.
        self.assertEqual(alarm["TreatMissingData"], "breaching")
        self.assertEqual(alarm["Period"] * alarm["EvaluationPeriods"], 900)
        self.assertEqual(alarm["AlarmActions"], [{"Ref": "AlarmTopicArn"}])

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

    def test_ses_events_reach_their_queue_through_the_default_bus_and_what_is_not_delivered_is_kept(self):
        destination = self.resources["MailEventDestination"]["Properties"]["EventDestination"]
        self.assertEqual(set(destination), {"Name", "Enabled", "MatchingEventTypes", "EventBridgeDestination"})
        self.assertIn(":event-bus/default", destination["EventBridgeDestination"]["EventBusArn"]["Fn::Sub"])
        rule = self.resources["SesEventsRule"]["Properties"]
        self.assertEqual(rule["EventPattern"]["source"], ["aws.ses"])
        # Only this stack's configuration set: another stack's events in the account stay out.
        tags = rule["EventPattern"]["detail"]["mail"]["tags"]
        self.assertEqual(tags, {"ses:configuration-set": [{"Ref": "MailConfigurationSet"}]})
        (target,) = rule["Targets"]
        self.assertEqual(target["Arn"], {"Fn::GetAtt": ["SesEventsQueue", "Arn"]})
        self.assertEqual(target["DeadLetterConfig"]["Arn"], {"Fn::GetAtt": ["SesEventsDeadLetterQueue", "Arn"]})
        self.assertEqual(target["RetryPolicy"]["MaximumEventAgeInSeconds"], 86400)
        policy = self.resources["SesEventsQueuePolicy"]["Properties"]
        (statement,) = policy["PolicyDocument"]["Statement"]
        self.assertEqual(statement["Principal"], {"Service": "events.amazonaws.com"})
        self.assertEqual(statement["Condition"]["ArnEquals"]["aws:SourceArn"], {"Fn::GetAtt": ["SesEventsRule", "Arn"]})
        self.assertEqual(len(policy["Queues"]), 2)
        # The queues are encrypted with the stack key: EventBridge may use it, for this account only.
        key = {s["Sid"]: s for s in self.resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]}
        delivers = key["EventBridgeDeliversEncryptedEvents"]
        self.assertEqual(delivers["Principal"], {"Service": "events.amazonaws.com"})
        self.assertEqual(delivers["Condition"]["StringEquals"]["aws:SourceAccount"], {"Ref": "AWS::AccountId"})

    def test_only_the_notice_set_sends_without_tls_and_only_the_secure_message_path_names_it(self):
        sets = self.of_type("AWS::SES::ConfigurationSet")
        self.assertEqual(set(sets), {"MailConfigurationSet", "NoticeConfigurationSet"})
        self.assertEqual(sets["NoticeConfigurationSet"]["Properties"]["DeliveryOptions"], {"TlsPolicy": "OPTIONAL"})
        env = self.t["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(env["SES_NOTICE_CONFIGURATION_SET"], {"Ref": "NoticeConfigurationSet"})
        self.assertEqual(env["TLS_FALLBACK"], {"Ref": "TlsFallback"})
        fallback = self.t["Parameters"]["TlsFallback"]
        self.assertEqual((fallback["Default"], fallback["AllowedValues"]), ("drop", ["drop", "secure_message"]))
        # The public consent function cannot reach either set.
        self.assertNotIn("NoticeConfigurationSet", refs(self.resources["ConsentFunction"]["Properties"]["Policies"]))

    def http_routes(self):
        """Every route of the HTTP API: {route key: (function, authorization type)}, read from the
        AWS::ApiGatewayV2::Route resources through their integrations."""
        integrations = self.of_type("AWS::ApiGatewayV2::Integration")
        routes = {}
        for name, route in self.of_type("AWS::ApiGatewayV2::Route").items():
            p = route["Properties"]
            self.assertEqual(p["ApiId"], {"Ref": "HttpApi"}, name)
            target = p["Target"]["Fn::Sub"]
            self.assertTrue(target.startswith("integrations/${") and target.endswith("}"), (name, target))
            integration = target[len("integrations/${"):-1]
            self.assertIn(integration, integrations, name)
            uri = integrations[integration]["Properties"]["IntegrationUri"]
            self.assertEqual(set(uri), {"Fn::GetAtt"}, integration)
            function, attribute = uri["Fn::GetAtt"]
            self.assertEqual(attribute, "Arn", integration)
            self.assertNotIn(p["RouteKey"], routes, f"{name}: route key declared twice")
            routes[p["RouteKey"]] = (function, p["AuthorizationType"])
        return routes

    def test_the_api_serves_exactly_the_known_routes_each_on_its_function(self):
        routes = self.http_routes()
        self.assertEqual({key: function for key, (function, _) in routes.items()}, ROUTES)
        self.assertEqual(len(routes), 52)
        # No SAM HttpApi event is left: the API must not name the functions (see the PUBLIC_BASE_URL test).
        for name, function in self.of_type("AWS::Serverless::Function").items():
            for event in function["Properties"].get("Events", {}).values():
                self.assertNotIn(event["Type"], {"HttpApi", "Api"}, name)
        self.assertFalse(self.of_type("AWS::Serverless::HttpApi"))

    def test_admin_routes_use_iam_and_public_routes_are_the_known_few(self):
        public = set()
        for key, (_, authorization) in self.http_routes().items():
            method, path = key.split(" ")
            if path.startswith(ADMIN_PREFIXES):
                self.assertEqual(authorization, "AWS_IAM", key)
            else:
                self.assertEqual(authorization, "NONE", key)
                public.add((method, path))
        self.assertEqual(
            public,
            {("POST", "/v1/consent"), ("GET", "/confirm/{token}"), ("POST", "/confirm/{token}"), ("GET", "/thanks"), ("GET", "/forms/{form_id}"), ("GET", "/privacy"),
             ("GET", "/u/{token}"), ("POST", "/u/{token}"), ("GET", "/t/o/{token}"), ("GET", "/t/c/{token}"),
             ("GET", "/preferences/{token}"), ("POST", "/preferences/{token}"),
             ("GET", "/s/{token}"), ("POST", "/s/{token}"), ("POST", "/s/{token}/code"),
             ("GET", "/healthz")},
        )
        # The IAM-authorized functions serve admin routes only, the public ones public routes only.
        for key, (function, authorization) in self.http_routes().items():
            self.assertEqual(authorization == "AWS_IAM", function in {"ContactsFunction", "CampaignsFunction"}, key)

    def test_the_api_is_a_plain_http_api_with_the_cors_of_the_forms(self):
        api = self.resources["HttpApi"]
        self.assertEqual(api["Type"], "AWS::ApiGatewayV2::Api")
        p = api["Properties"]
        self.assertEqual(p["ProtocolType"], "HTTP")
        # No OpenAPI body: a body would name the functions' ARNs.
        self.assertFalse({"Body", "BodyS3Location", "Target", "RouteKey"} & set(p))
        self.assertEqual(p["CorsConfiguration"], {"AllowOrigins": {"Ref": "AllowedOrigins"}, "AllowMethods": ["GET", "POST", "OPTIONS"],
                                                  "AllowHeaders": ["content-type"], "MaxAge": 600})
        self.assertEqual(set(self.of_type("AWS::ApiGatewayV2::Api")), {"HttpApi"})

    def test_each_http_function_has_one_proxy_integration_and_one_invoke_permission_scoped_to_the_api(self):
        integrations = self.of_type("AWS::ApiGatewayV2::Integration")
        permissions = self.of_type("AWS::Lambda::Permission")
        served = {function for function, _ in self.http_routes().values()}
        self.assertEqual(served, {"ConsentFunction", "WebhooksFunction", "ContactsFunction", "CampaignsFunction"})
        by_function = {}
        for name, integration in integrations.items():
            p = integration["Properties"]
            self.assertEqual((p["ApiId"], p["IntegrationType"], p["PayloadFormatVersion"]),
                             ({"Ref": "HttpApi"}, "AWS_PROXY", "2.0"), name)
            by_function.setdefault(p["IntegrationUri"]["Fn::GetAtt"][0], []).append(name)
        self.assertEqual({f: len(names) for f, names in by_function.items()}, {f: 1 for f in served})
        invoked = {}
        for name, permission in permissions.items():
            p = permission["Properties"]
            self.assertEqual((p["Action"], p["Principal"]), ("lambda:InvokeFunction", "apigateway.amazonaws.com"), name)
            self.assertEqual(p["SourceArn"], {"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*"}, name)
            invoked.setdefault(p["FunctionName"]["Fn::GetAtt"][0], []).append(name)
        self.assertEqual({f: len(names) for f, names in invoked.items()}, {f: 1 for f in served})

    def test_the_default_stage_deploys_itself_and_logs_ids_only(self):
        (name,) = self.of_type("AWS::ApiGatewayV2::Stage")
        p = self.resources[name]["Properties"]
        self.assertEqual((p["ApiId"], p["StageName"], p["AutoDeploy"]), ({"Ref": "HttpApi"}, "$default", True))
        logs = p["AccessLogSettings"]
        self.assertEqual(logs["DestinationArn"], {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]})
        fields = json.loads(logs["Format"])
        self.assertEqual(fields, {"requestId": "$context.requestId", "routeKey": "$context.routeKey",
                                  "status": "$context.status", "latency": "$context.responseLatency"})

    def test_the_consent_route_has_a_throttle_of_its_own_and_unsubscribe_is_not_under_it(self):
        stage = self.resources["HttpApiStage"]
        default, per_route = stage["Properties"]["DefaultRouteSettings"], stage["Properties"]["RouteSettings"]
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
        self.assertEqual(routes["POST /v1/consent"], ("ConsentFunction", "NONE"))
        self.assertEqual(set(per_route), {"POST /v1/consent"})
        # The stage is created after that route (a route setting may only name a declared route).
        declaring = [name for name, r in self.of_type("AWS::ApiGatewayV2::Route").items()
                     if r["Properties"]["RouteKey"] == "POST /v1/consent"]
        depends_on = stage.get("DependsOn", [])
        self.assertLessEqual(set(declaring), set([depends_on] if isinstance(depends_on, str) else depends_on))
        # Unsubscribe (the page and RFC 8058 one-click) stays under the default settings only.
        unsubscribe = {key for key, (function, _) in routes.items() if function == "WebhooksFunction" and " /u/" in key}
        self.assertEqual(unsubscribe, {"GET /u/{token}", "POST /u/{token}"})
        self.assertFalse(unsubscribe & set(per_route))

    def test_the_event_publisher_policy_invokes_post_v1_events_and_nothing_else(self):
        import fnmatch
        statements = self.resources["EventPublisherPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        self.assertEqual([s["Action"] for s in statements], ["execute-api:Invoke"])
        resource = statements[0]["Resource"]["Fn::Sub"]
        prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/"
        self.assertTrue(resource.startswith(prefix), resource)
        pattern = resource[len(prefix):]
        allowed = []
        for key in self.http_routes():
            method, path = key.split(" ")
            request = f"{method}{path}".replace("{id}", "x").replace("{token}", "x").replace("{form_id}", "x")
            if fnmatch.fnmatchcase(request, pattern):
                allowed.append(key)
        self.assertEqual(allowed, ["POST /v1/events"])
        self.assertEqual(self.t["Outputs"]["EventPublisherPolicyArn"]["Value"], {"Ref": "EventPublisherPolicy"})

    def test_the_operator_policy_invokes_every_admin_route_and_no_public_one(self):
        import fnmatch
        policy = self.resources["OperatorPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        self.assertEqual(policy[0]["Action"], "execute-api:Invoke")
        # Beyond the admin routes: reading the stack and doctor's read-only SES checks, nothing else.
        others = [a for s in policy[1:] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
        self.assertEqual(sorted(others), [
            "cloudformation:DescribeStacks", "ses:GetAccount", "ses:GetConfigurationSet",
            "ses:GetConfigurationSetEventDestinations", "ses:GetEmailIdentity",
        ])
        prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/"
        patterns = []
        for resource in policy[0]["Resource"]:
            text = resource["Fn::Sub"]
            self.assertTrue(text.startswith(prefix), text)
            patterns.append(text[len(prefix):])
        routes = self.http_routes()
        self.assertTrue(routes)
        for key, (_, authorization) in routes.items():
            method, path = key.split(" ")
            # API Gateway matches a request's actual path; a path parameter stands for one or more characters.
            request = f"{method}{path}".replace("{id}", "x").replace("{token}", "x").replace("{form_id}", "x")
            allowed = any(fnmatch.fnmatchcase(request, p) for p in patterns)
            self.assertEqual(allowed, authorization == "AWS_IAM", key)
        self.assertEqual(self.t["Outputs"]["OperatorPolicyArn"]["Value"], {"Ref": "OperatorPolicy"})

    def test_public_base_url_is_optional_and_resolves_in_order(self):
        p = self.t["Parameters"]["PublicBaseUrl"]
        self.assertEqual(p["Default"], "")
        pattern = re.compile(p["AllowedPattern"])
        for good in ["", "https://mail.clinic.example", "https://mail.clinic.example/carepost", "https://a.example:8443/x/y"]:
            self.assertTrue(pattern.fullmatch(good), good)
        for bad in ["http://mail.clinic.example", "https://mail.clinic.example/", "https://a.example/x/", "mail.clinic.example",
                    "https://", "https://a b.example"]:
            self.assertFalse(pattern.fullmatch(bad), bad)
        env = self.t["Globals"]["Function"]["Environment"]["Variables"]["PUBLIC_BASE_URL"]
        # The output shows the same value the functions get.
        self.assertEqual(self.t["Outputs"]["PublicBaseUrl"]["Value"], env)
        api_url = {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
        self.assertEqual(self.t["Outputs"]["ApiEndpoint"]["Value"], api_url)  # the CLI's, unchanged
        waf_url = {"Fn::Sub": "https://${FrontDistribution.DomainName}"}
        cases = [
            ({}, api_url),
            ({"WafRateLimitPerIp": 100}, waf_url),
            ({"PublicBaseUrl": "https://links.clinic.example"}, {"Ref": "PublicBaseUrl"}),
            ({"PublicBaseUrl": "https://links.clinic.example", "WafRateLimitPerIp": 100}, {"Ref": "PublicBaseUrl"}),
            ({"CustomDomainName": "mail.clinic.example"}, {"Fn::Sub": "https://${CustomDomainName}"}),
            ({"CustomDomainName": "mail.clinic.example", "HostedZoneId": "Z0123456789ABC"}, {"Fn::Sub": "https://${CustomDomainName}"}),
            ({"CustomDomainName": "mail.clinic.example", "WafRateLimitPerIp": 100}, {"Fn::Sub": "https://${CustomDomainName}"}),
            ({"CustomDomainName": "mail.clinic.example", "PublicBaseUrl": "https://links.clinic.example"}, {"Ref": "PublicBaseUrl"}),
        ]
        for values, expected in cases:
            with self.subTest(values=values):
                self.assertEqual(self.resolve(env, **values), expected)
        # No function sets its own: every one has Globals' value.
        for name, function in self.of_type("AWS::Serverless::Function").items():
            self.assertNotIn("PUBLIC_BASE_URL", function["Properties"].get("Environment", {}).get("Variables", {}), name)

    def test_no_function_environment_names_a_resource_that_depends_on_that_function(self):
        functions = self.of_type("AWS::Serverless::Function")
        globals_env = self.t["Globals"]["Function"]["Environment"]
        deps = {name: refs(r.get("Properties", {})) | set(depends_on(r)) for name, r in self.resources.items()}
        for name in functions:
            deps[name] |= refs(self.t["Globals"]["Function"])
        # A SAM API event writes the function into the API it names: the API depends on the function.
        for name, function in functions.items():
            for event in function["Properties"].get("Events", {}).values():
                if event["Type"] in {"HttpApi", "Api"}:
                    deps.setdefault(refs(event["Properties"].get("ApiId", {})).pop(), set()).add(name)
        deps = {name: found & set(self.resources) for name, found in deps.items()}
        for name, function in functions.items():
            named = (refs(globals_env) | refs(function["Properties"].get("Environment", {}))) & set(self.resources)
            seen, todo = set(), list(named)
            while todo:
                current = todo.pop()
                if current not in seen:
                    seen.add(current)
                    todo += deps.get(current, ())
            self.assertNotIn(name, seen, f"{name}'s environment names a resource that depends on {name}")
        # What CloudFormation receives (SAM's own translation) has no dependency cycle either.
        self.assertEqual(cycles(translated(self.t)), [])

    def exists(self, name, **values):
        """Whether CloudFormation would create this resource (or output) for these parameter values."""
        entry = self.resources.get(name) or self.t["Outputs"][name]
        return "Condition" not in entry or self.condition(entry["Condition"], **values)

    def test_the_custom_domain_is_optional_and_off_by_default(self):
        p = self.t["Parameters"]
        for name in ["CustomDomainName", "CertificateArn", "HostedZoneId"]:
            self.assertEqual((p[name]["Type"], p[name]["Default"]), ("String", ""), name)
        accepts = {
            "CustomDomainName": (["", "mail.clinic.example", "clinic.example", "a-b.mail.clinic.example"],
                                 ["https://mail.clinic.example", "mail.clinic.example.", "Mail.Clinic.Example", "-a.example", "localhost"]),
            "CertificateArn": (["", "arn:aws:acm:us-east-1:111122223333:certificate/12345678-1234-1234-1234-123456789012"],
                               ["arn:aws:iam::111122223333:server-certificate/x", "12345678-1234-1234-1234-123456789012"]),
            "HostedZoneId": (["", "Z0123456789ABCDEFGHIJ"], ["/hostedzone/Z0123456789ABCDEFGHIJ", "clinic.example"]),
        }
        for name, (good, bad) in accepts.items():
            pattern = re.compile(p[name]["AllowedPattern"])
            for value in good:
                self.assertTrue(pattern.fullmatch(value), (name, value))
            for value in bad:
                self.assertFalse(pattern.fullmatch(value), (name, value))
        domain = {"DomainCertificate", "ApiDomain", "ApiDomainMapping", "DomainRecord"}
        self.assertEqual({n for n, r in self.resources.items() if r["Type"].startswith(
            ("AWS::CertificateManager::", "AWS::ApiGatewayV2::DomainName", "AWS::ApiGatewayV2::ApiMapping", "AWS::Route53::"))}, domain)
        for name in domain | {"CustomDomainDnsRecord"}:
            self.assertFalse(self.exists(name), name)
            self.assertFalse(self.exists(name, WafRateLimitPerIp=100), name)
        # The distribution keeps CloudFront's own name and certificate without a domain.
        config = self.resources["FrontDistribution"]["Properties"]["DistributionConfig"]
        self.assertNotIn("Aliases", self.resolve(config, WafRateLimitPerIp=100))
        self.assertEqual(self.resolve(config, WafRateLimitPerIp=100)["ViewerCertificate"], {"CloudFrontDefaultCertificate": True})

    def test_a_custom_domain_gets_a_dns_validated_certificate_unless_one_is_given(self):
        domain = {"CustomDomainName": "mail.clinic.example"}
        given = {**domain, "CertificateArn": "arn:aws:acm:us-east-1:111122223333:certificate/abc"}
        self.assertTrue(self.exists("DomainCertificate", **domain))
        self.assertTrue(self.exists("DomainCertificate", **domain, WafRateLimitPerIp=100))
        self.assertFalse(self.exists("DomainCertificate", **given))
        p = self.resources["DomainCertificate"]["Properties"]
        self.assertEqual((p["DomainName"], p["ValidationMethod"]), ({"Ref": "CustomDomainName"}, "DNS"))
        self.assertNotIn("SubjectAlternativeNames", p)
        # With the zone, ACM publishes its validation record itself; without, CloudFormation waits for the team's.
        self.assertEqual(self.resolve(p, **domain, HostedZoneId="Z0123456789ABC")["DomainValidationOptions"],
                         [{"DomainName": {"Ref": "CustomDomainName"}, "HostedZoneId": {"Ref": "HostedZoneId"}}])
        self.assertNotIn("DomainValidationOptions", self.resolve(p, **domain))
        # Whichever serves the domain takes the given certificate, else the stack's own.
        api_certificate = self.resources["ApiDomain"]["Properties"]["DomainNameConfigurations"][0]["CertificateArn"]
        front = self.resources["FrontDistribution"]["Properties"]["DistributionConfig"]["ViewerCertificate"]
        for values, expected in [(domain, {"Ref": "DomainCertificate"}), (given, {"Ref": "CertificateArn"})]:
            self.assertEqual(self.resolve(api_certificate, **values), expected)
            self.assertEqual(self.resolve(front, **values, WafRateLimitPerIp=100)["AcmCertificateArn"], expected)

    def test_without_waf_the_domain_is_a_regional_api_domain_on_the_default_stage(self):
        domain = {"CustomDomainName": "mail.clinic.example"}
        for name in ["ApiDomain", "ApiDomainMapping"]:
            self.assertTrue(self.exists(name, **domain), name)
            self.assertFalse(self.exists(name, **domain, WafRateLimitPerIp=100), name)
        p = self.resources["ApiDomain"]["Properties"]
        self.assertEqual(p["DomainName"], {"Ref": "CustomDomainName"})
        (configuration,) = p["DomainNameConfigurations"]
        self.assertEqual((configuration["EndpointType"], configuration["SecurityPolicy"]), ("REGIONAL", "TLS_1_2"))
        mapping = self.resources["ApiDomainMapping"]["Properties"]
        self.assertEqual(mapping, {"DomainName": {"Ref": "ApiDomain"}, "ApiId": {"Ref": "HttpApi"}, "Stage": {"Ref": "HttpApiStage"}})
        self.assertEqual(self.resources["HttpApiStage"]["Properties"]["StageName"], "$default")

    def test_with_waf_the_domain_is_on_the_distribution_so_its_requests_pass_the_web_acl(self):
        values = {"CustomDomainName": "mail.clinic.example", "WafRateLimitPerIp": 100}
        config = self.resolve(self.resources["FrontDistribution"]["Properties"]["DistributionConfig"], **values)
        self.assertEqual(config["Aliases"], [{"Ref": "CustomDomainName"}])
        self.assertEqual(config["ViewerCertificate"], {"AcmCertificateArn": {"Ref": "DomainCertificate"},
                                                       "SslSupportMethod": "sni-only", "MinimumProtocolVersion": "TLSv1.2_2021"})
        self.assertEqual(config["WebACLId"], {"Fn::GetAtt": ["FrontWebAcl", "Arn"]})
        # CloudFront takes certificates from us-east-1 only, where a WAF stack must be anyway.
        self.assertEqual(self.refused(**values), [])
        (description,) = self.refused(**values, region="eu-west-1")
        self.assertIn("us-east-1", description)

    def test_the_domain_record_is_published_in_the_zone_or_shown_as_an_output(self):
        domain = {"CustomDomainName": "mail.clinic.example"}
        zone = {**domain, "HostedZoneId": "Z0123456789ABC"}
        self.assertTrue(self.exists("DomainRecord", **zone))
        self.assertFalse(self.exists("DomainRecord", **domain))
        self.assertFalse(self.exists("CustomDomainDnsRecord", **zone))
        self.assertTrue(self.exists("CustomDomainDnsRecord", **domain))
        record = self.resources["DomainRecord"]["Properties"]
        self.assertEqual((record["HostedZoneId"], record["Name"], record["Type"]), ({"Ref": "HostedZoneId"}, {"Ref": "CustomDomainName"}, "A"))
        self.assertEqual(self.resolve(record, **zone)["AliasTarget"],
                         {"DNSName": {"Fn::GetAtt": ["ApiDomain", "RegionalDomainName"]},
                          "HostedZoneId": {"Fn::GetAtt": ["ApiDomain", "RegionalHostedZoneId"]}, "EvaluateTargetHealth": False})
        self.assertEqual(self.resolve(record, **zone, WafRateLimitPerIp=100)["AliasTarget"],
                         {"DNSName": {"Fn::GetAtt": ["FrontDistribution", "DomainName"]},
                          "HostedZoneId": "Z2FDTNDATAQYW2", "EvaluateTargetHealth": False})
        output = self.t["Outputs"]["CustomDomainDnsRecord"]
        self.assertIn("CNAME", output["Description"])
        text, variables = output["Value"]["Fn::Sub"]
        self.assertEqual(text, "CNAME ${CustomDomainName} -> ${Target}")
        self.assertEqual(self.resolve(variables, **domain), {"Target": {"Fn::GetAtt": ["ApiDomain", "RegionalDomainName"]}})
        self.assertEqual(self.resolve(variables, **domain, WafRateLimitPerIp=100),
                         {"Target": {"Fn::GetAtt": ["FrontDistribution", "DomainName"]}})

    def test_rules_refuse_a_certificate_or_zone_without_a_domain(self):
        certificate = "arn:aws:acm:us-east-1:111122223333:certificate/abc"
        (description,) = self.refused(CertificateArn=certificate)
        self.assertIn("CustomDomainName", description)
        (description,) = self.refused(HostedZoneId="Z0123456789ABC")
        self.assertIn("CustomDomainName", description)
        self.assertEqual(self.refused(CustomDomainName="mail.clinic.example", CertificateArn=certificate, HostedZoneId="Z0123456789ABC"), [])
        self.assertEqual(self.refused(CustomDomainName="mail.clinic.example", region="eu-west-1"), [])

    def test_the_sender_identity_is_off_by_default_and_otherwise_signs_and_bounces_under_the_sender_domain(self):
        p = self.t["Parameters"]
        self.assertEqual((p["CreateSenderIdentity"]["Default"], p["CreateSenderIdentity"]["AllowedValues"]), ("false", ["true", "false"]))
        self.assertEqual(p["MailFromSubdomain"]["Default"], "bounce")
        pattern = re.compile(p["MailFromSubdomain"]["AllowedPattern"])
        for good in ["bounce", "mail-from", "b1"]:
            self.assertTrue(pattern.fullmatch(good), good)
        for bad in ["", "bounce.clinic.example", "-bounce", "Bounce"]:
            self.assertFalse(pattern.fullmatch(bad), bad)
        self.assertEqual(self.t["Conditions"]["SenderIdentityEnabled"], {"Fn::Equals": [{"Ref": "CreateSenderIdentity"}, "true"]})
        self.assertFalse(self.exists("SenderIdentity"))  # an identity verified outside the stack is left alone
        self.assertTrue(self.exists("SenderIdentity", CreateSenderIdentity="true"))
        identity = self.resources["SenderIdentity"]
        self.assertEqual(set(self.of_type("AWS::SES::EmailIdentity")), {"SenderIdentity"})
        # Kept like the key and the tables: deleting it would stop the domain's mail.
        self.assertEqual((identity["DeletionPolicy"], identity["UpdateReplacePolicy"]), ("Retain", "Retain"))
        props = identity["Properties"]
        self.assertEqual(props["EmailIdentity"], {"Ref": "SenderDomain"})  # the identity the sender's role names
        self.assertEqual(props["DkimAttributes"], {"SigningEnabled": True})
        self.assertEqual(props["DkimSigningAttributes"], {"NextSigningKeyLength": "RSA_2048_BIT"})
        self.assertNotIn("DomainSigningPrivateKey", props["DkimSigningAttributes"])  # Easy DKIM, not BYODKIM
        self.assertEqual(props["MailFromAttributes"], {"MailFromDomain": {"Fn::Sub": "${MailFromSubdomain}.${SenderDomain}"},
                                                       "BehaviorOnMxFailure": "REJECT_MESSAGE"})
        self.assertEqual(props["ConfigurationSetAttributes"], {"ConfigurationSetName": {"Ref": "MailConfigurationSet"}})

    def test_every_dns_record_the_sender_identity_needs_is_an_output(self):
        outputs = {name: o for name, o in self.t["Outputs"].items() if o.get("Condition") == "SenderIdentityEnabled"}
        expected = {
            **{f"SenderDkimRecord{i}": ("CNAME", f"CNAME ${{SenderIdentity.DkimDNSTokenName{i}}} -> ${{SenderIdentity.DkimDNSTokenValue{i}}}",
                                        "_domainkey.SenderDomain") for i in (1, 2, 3)},
            "SenderMailFromMxRecord": ("MX", "MX ${MailFromSubdomain}.${SenderDomain} -> 10 feedback-smtp.${AWS::Region}.amazonses.com",
                                       "MailFromSubdomain.SenderDomain"),
            "SenderMailFromSpfRecord": ("TXT", 'TXT ${MailFromSubdomain}.${SenderDomain} -> "v=spf1 include:amazonses.com ~all"',
                                        "MailFromSubdomain.SenderDomain"),
            "SenderDmarcRecord": ("TXT", 'TXT _dmarc.${SenderDomain} -> "v=DMARC1; p=quarantine; adkim=s; aspf=r"', "_dmarc.SenderDomain"),
        }
        self.assertEqual(set(outputs), set(expected))
        for name, (kind, value, where) in expected.items():
            self.assertEqual(outputs[name]["Value"], {"Fn::Sub": value}, name)
            # The description says which record and where.
            self.assertIn(kind, outputs[name]["Description"], name)
            self.assertIn(where, outputs[name]["Description"], name)
        self.assertIn("suggestion", outputs["SenderDmarcRecord"]["Description"])
        self.assertIn("p=none", outputs["SenderDmarcRecord"]["Description"])
        # With the identity off, no record output appears.
        for name in expected:
            self.assertFalse(self.exists(name), name)
            self.assertTrue(self.exists(name, CreateSenderIdentity="true"), name)

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
