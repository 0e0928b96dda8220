//! Published us-east-1 on-demand list prices (no free tier), as
//! docs/benchmarks.md records them with their date, and what counted usage
//! costs at those prices.

/// US dollars per unit.
pub mod usd {
    /// DynamoDB on-demand, per write request unit ($0.625 per million).
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625e-6;
    /// DynamoDB on-demand, per read request unit ($0.125 per million).
    pub const DYNAMODB_READ_UNIT: f64 = 0.125e-6;
    /// SQS standard queue, per request of up to 64 KB ($0.40 per million).
    pub const SQS_REQUEST: f64 = 0.40e-6;
    /// SNS standard topic, per publish of up to 64 KB ($0.50 per million;
    /// delivery to SQS is free).
    pub const SNS_PUBLISH: f64 = 0.50e-6;
    /// KMS, per request ($0.03 per 10,000).
    pub const KMS_REQUEST: f64 = 0.03 / 10_000.0;
    /// Lambda, per invocation ($0.20 per million).
    pub const LAMBDA_REQUEST: f64 = 0.20e-6;
    /// Lambda arm64, per GB-second of duration.
    pub const LAMBDA_ARM64_GB_SECOND: f64 = 0.000_013_333_4;
    /// CloudWatch Logs standard class, per GB ingested ($0.50).
    pub const LOGS_INGESTED_GB: f64 = 0.50;
    /// SES outbound, per email ($0.10 per 1,000).
    pub const SES_EMAIL: f64 = 0.10e-3;
}

/// What a run used, in the units AWS bills.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub dynamodb_write_units: f64,
    pub dynamodb_read_units: f64,
    pub sqs_requests: f64,
    pub sns_publishes: f64,
    pub kms_requests: f64,
    pub lambda_invocations: f64,
    pub lambda_gb_seconds: f64,
    pub log_bytes: f64,
    pub ses_emails: f64,
}

impl Usage {
    /// Adds another run's usage to this one.
    pub fn add(&mut self, other: &Usage) {
        self.dynamodb_write_units += other.dynamodb_write_units;
        self.dynamodb_read_units += other.dynamodb_read_units;
        self.sqs_requests += other.sqs_requests;
        self.sns_publishes += other.sns_publishes;
        self.kms_requests += other.kms_requests;
        self.lambda_invocations += other.lambda_invocations;
        self.lambda_gb_seconds += other.lambda_gb_seconds;
        self.log_bytes += other.log_bytes;
        self.ses_emails += other.ses_emails;
    }

    /// Adds counted requests: DynamoDB's request units, SQS's and KMS's requests.
    pub fn add_calls(
        &mut self,
        calls: &std::collections::BTreeMap<crate::aws_calls::Operation, crate::aws_calls::Tally>,
    ) {
        for ((service, _), t) in calls {
            match service.as_str() {
                "DynamoDB" => {
                    self.dynamodb_write_units += t.write_units;
                    self.dynamodb_read_units += t.read_units;
                }
                "SQS" => self.sqs_requests += t.requests as f64,
                "KMS" => self.kms_requests += t.requests as f64,
                _ => {}
            }
        }
    }
}

/// Dollars by service, for the same run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bill {
    pub dynamodb: f64,
    pub sqs: f64,
    pub sns: f64,
    pub kms: f64,
    pub lambda: f64,
    pub logs: f64,
    pub ses: f64,
}

impl Bill {
    pub fn of(u: &Usage) -> Self {
        Self {
            dynamodb: u.dynamodb_write_units * usd::DYNAMODB_WRITE_UNIT
                + u.dynamodb_read_units * usd::DYNAMODB_READ_UNIT,
            sqs: u.sqs_requests * usd::SQS_REQUEST,
            sns: u.sns_publishes * usd::SNS_PUBLISH,
            kms: u.kms_requests * usd::KMS_REQUEST,
            lambda: u.lambda_invocations * usd::LAMBDA_REQUEST + u.lambda_gb_seconds * usd::LAMBDA_ARM64_GB_SECOND,
            logs: u.log_bytes / 1e9 * usd::LOGS_INGESTED_GB,
            ses: u.ses_emails * usd::SES_EMAIL,
        }
    }

    /// Everything but SES, which is what we add to what sending costs anyway.
    pub fn beyond_ses(&self) -> f64 {
        self.dynamodb + self.sqs + self.sns + self.kms + self.lambda + self.logs
    }

    /// The bill scaled from `emails` sent to one million.
    pub fn per_million(&self, emails: f64) -> Self {
        let k = 1e6 / emails;
        Self {
            dynamodb: self.dynamodb * k,
            sqs: self.sqs * k,
            sns: self.sns * k,
            kms: self.kms * k,
            lambda: self.lambda * k,
            logs: self.logs * k,
            ses: self.ses * k,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_emails_cost_a_hundred_dollars_at_ses() {
        let bill = Bill::of(&Usage { ses_emails: 1e6, ..Usage::default() });

        assert!((bill.ses - 100.0).abs() < 1e-9);
        assert_eq!(bill.beyond_ses(), 0.0);
    }

    #[test]
    fn each_service_is_priced_by_its_own_unit() {
        let usage = Usage {
            dynamodb_write_units: 2e6,
            dynamodb_read_units: 4e6,
            sqs_requests: 1e6,
            sns_publishes: 1e6,
            kms_requests: 10_000.0,
            lambda_invocations: 1e6,
            lambda_gb_seconds: 1e5,
            log_bytes: 2e9,
            ses_emails: 0.0,
        };

        let bill = Bill::of(&usage);

        assert!((bill.dynamodb - (1.25 + 0.5)).abs() < 1e-9);
        assert!((bill.sqs - 0.40).abs() < 1e-9);
        assert!((bill.sns - 0.50).abs() < 1e-9);
        assert!((bill.kms - 0.03).abs() < 1e-9);
        assert!((bill.lambda - (0.20 + 1.33334)).abs() < 1e-6);
        assert!((bill.logs - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_bill_scales_to_a_million_emails() {
        let bill = Bill { dynamodb: 0.01, sqs: 0.002, ..Bill::default() };

        let scaled = bill.per_million(2_000.0);

        assert!((scaled.dynamodb - 5.0).abs() < 1e-9);
        assert!((scaled.beyond_ses() - 6.0).abs() < 1e-9);
    }
}
