"""Understanding people: behavioural profiles, customer-base models, predictions, segments."""
