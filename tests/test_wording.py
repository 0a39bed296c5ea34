"""How values are worded for an officer: pure functions, checked against a table."""

import pytest

from fedfina_cli.core.wording import collected_value, file_name_part, inr, masked_phone, readable_name


@pytest.mark.parametrize("amount, shown", [
    (0, "₹0"), (999, "₹999"), (1000, "₹1,000"), (200000, "₹2,00,000 (2 lakh)"), (12345678, "₹1,23,45,678"),
    (1234.5, "₹1,234.50"), (-50000, "-₹50,000"), (100000000.25, "₹10,00,00,000.25"),
    # as officers say them, where that is exact: not "1.23 lakh" for ₹1,23,456
    (12000000, "₹1,20,00,000 (1.2 crore)"), (250000, "₹2,50,000 (2.5 lakh)"), (123456, "₹1,23,456"),
    (1500000, "₹15,00,000 (15 lakh)"),
])
def test_rupees_in_indian_grouping(amount, shown):
    assert inr(amount) == shown


@pytest.mark.parametrize("field, description, value, shown", [
    ("loan_amount", "Requested loan amount in INR", 200000, "₹2,00,000 (2 lakh)"),
    ("loan_amount", None, "2,00,000", "₹2,00,000 (2 lakh)"),
    ("monthly_income", None, 45000.0, "₹45,000"),
    ("business_years", "Years in business", 8, "8"),  # a count, not money
    ("pin_code", None, 110001, "110001"),
    ("has_gst", None, True, "yes"),
    ("loan_amount", None, None, "not collected"),
    ("loan_amount", None, "about two lakh", "about two lakh"),  # words stay as said
    # A payload's number beyond any loan: shown as it came (1e30 failed the report for good).
    ("loan_amount", None, 1e30, "1e+30 (too large to be an amount)"),
    ("loan_amount", None, "9" * 400, f"{'9' * 400} (too large to be an amount)"),
    ("loan_amount", None, -1e16, "-1e+16 (too large to be an amount)"),
    ("loan_amount", None, 99999999999999, "₹9,99,99,99,99,99,999"),  # 99,99,999.99 crore: not exact
])
def test_collected_values(field, description, value, shown):
    assert collected_value(field, description, value) == shown


@pytest.mark.parametrize("identifier, name", [
    ("loan_amount", "Loan amount"), ("collected_loan_amount", "Collected loan amount"),
    ("monthly_emi_inr", "Monthly EMI INR"), ("pan_number", "PAN number"), ("businessType", "Business type"),
])
def test_readable_names(identifier, name):
    assert readable_name(identifier) == name


@pytest.mark.parametrize("number, shown", [
    ("+919876543210", "+91 ••••••3210"), ("+91XXXXXX4821", "+91 ••••••4821"), ("98765 43210", "••••••3210"),
    ("", None), (None, None), ("12", None),
])
def test_masked_phone_keeps_only_the_last_four_digits(number, shown):
    assert masked_phone(number) == shown


@pytest.mark.parametrize("text, part", [
    ("Ramesh Kumar", "Ramesh-Kumar"), ("रमेश कुमार", "रमेश-कुमार"), ("../../etc/passwd", "etc-passwd"),
    ("a\r\nb", "a-b"), ("///", ""),
])
def test_file_name_parts_keep_letters_of_any_script_and_nothing_else(text, part):
    assert file_name_part(text) == part
