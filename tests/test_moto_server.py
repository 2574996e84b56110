import boto3

from notifier.local.moto_server import sent_emails


def test_embedded_aws_serves_ses_over_http(aws: str) -> None:
    # GIVEN a verified domain on the embedded AWS
    ses = boto3.client("sesv2")
    ses.create_email_identity(EmailIdentity="example.com")
    # WHEN an email is sent through the production client
    ses.send_email(
        FromEmailAddress="notifications@example.com",
        Destination={"ToAddresses": ["user-1@example.com"]},
        Content={"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "body"}}}},
    )
    # THEN the emulator recorded exactly that one email
    mails = sent_emails(aws)
    assert len(mails) == 1
    assert mails[0]["destinations"]["ToAddresses"] == ["user-1@example.com"]
