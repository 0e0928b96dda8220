"""Runs SAM CLI's own command-line parsing (offline, its deploy and build
commands with the work itself replaced) on every environment of
samconfig.toml and proves what `sam deploy` would deploy: the built
template (.aws-sam/build/template.yaml, not the source whose CodeUri would
upload the repository) and every parameter value exactly as written, values
with spaces included. `sam build` reads the source template.

Run by `make test` (scripts/infra-lint.sh) with the infra venv's Python."""

import os
import pathlib
import shutil
import tempfile
import tomllib
import unittest
from unittest import mock

from click.testing import CliRunner
from samcli.commands.build import command as build_command
from samcli.commands.deploy import command as deploy_command

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMCONFIG = ROOT / "samconfig.toml"

EXPECTED = {
    "default": ("carepost", {}),
    "staging": (
        "carepost-staging",
        {
            "CustomDomainName": "mail-staging.clinic.example",
            "AllowedOrigins": "https://staging.clinic.example",
            "SenderDomain": "staging.clinic.example",
            "SenderAddress": "news@staging.clinic.example",
            "SenderName": "Clinic (staging)",
            "AlarmTopicArn": "arn:aws:sns:us-east-1:111122223333:carepost-staging-alarms",
            "DeletionProtection": "false",
            "SendRatePerSecond": "1",
            "SenderMaxConcurrency": "2",
        },
    ),
    "production": (
        "carepost",
        {
            "CustomDomainName": "mail.clinic.example",
            "AllowedOrigins": "https://www.clinic.example",
            "SenderDomain": "clinic.example",
            "SenderAddress": "news@clinic.example",
            "SenderName": "Your clinic",
            "AlarmTopicArn": "arn:aws:sns:us-east-1:111122223333:carepost-alarms",
            "DeletionProtection": "true",
            "SendRatePerSecond": "50",
            "SenderMaxConcurrency": "5",
            "SenderBatchSize": "10",
            "SenderBatchingWindowSeconds": "1",
            "VisibilityTimeoutSeconds": "180",
            "MaxReceiveCount": "8",
        },
    ),
}


def resolved(command_module, args, workdir):
    """The arguments SAM CLI's command hands to its work function (do_cli)."""
    with mock.patch.object(command_module, "do_cli") as do_cli:
        result = CliRunner().invoke(command_module.cli, args, catch_exceptions=False, obj=None)
    assert result.exit_code == 0, result.output
    assert do_cli.call_count == 1, result.output
    return do_cli.call_args


class SamConfigTest(unittest.TestCase):
    def setUp(self):
        # A checkout after `sam build`: samconfig, the source template, the built one.
        self.work = pathlib.Path(tempfile.mkdtemp())
        shutil.copy(SAMCONFIG, self.work / "samconfig.toml")
        (self.work / "infra").mkdir()
        shutil.copy(ROOT / "infra" / "template.yaml", self.work / "infra" / "template.yaml")
        (self.work / ".aws-sam" / "build").mkdir(parents=True)
        shutil.copy(ROOT / "infra" / "template.yaml", self.work / ".aws-sam" / "build" / "template.yaml")
        self.cwd = os.getcwd()
        os.chdir(self.work)
        os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1", SAM_CLI_TELEMETRY="0")

    def tearDown(self):
        os.chdir(self.cwd)
        shutil.rmtree(self.work)

    def test_every_environment_is_tested(self):
        with open(SAMCONFIG, "rb") as f:
            environments = {k for k in tomllib.load(f) if k != "version"}
        self.assertEqual(environments, set(EXPECTED))

    def test_sam_deploy_uses_the_built_template_and_every_parameter_as_written(self):
        for env, (stack, parameters) in EXPECTED.items():
            with self.subTest(env=env):
                call = resolved(deploy_command, ["--config-env", env], self.work)
                template_file, stack_name, parameter_overrides = call.args[0], call.args[1], call.args[9]
                self.assertEqual(template_file, str(self.work / ".aws-sam" / "build" / "template.yaml"))
                self.assertEqual(stack_name, stack)
                self.assertEqual(dict(parameter_overrides or {}), parameters)

    def test_every_value_names_a_template_parameter_and_every_required_one_is_given(self):
        from cfnlint.decode import decode

        template, matches = decode(str(ROOT / "infra" / "template.yaml"))
        self.assertFalse(matches)
        parameters = template["Parameters"]
        required = {name for name, p in parameters.items() if "Default" not in p}
        # What a first deploy must be told; PublicBaseUrl is not among them (it resolves by itself).
        self.assertEqual(required, {"AllowedOrigins", "SenderDomain", "SenderAddress", "AlarmTopicArn"})
        for env, (_, values) in EXPECTED.items():
            with self.subTest(env=env):
                self.assertLessEqual(set(values), set(parameters))
                if values:  # the guided default environment asks for every parameter instead
                    self.assertLessEqual(required, set(values))

    def test_sam_build_reads_the_source_template(self):
        for env in EXPECTED:
            with self.subTest(env=env):
                call = resolved(build_command, ["--config-env", env], self.work)
                self.assertEqual(call.args[2], str(self.work / "infra" / "template.yaml"))


if __name__ == "__main__":
    unittest.main()
