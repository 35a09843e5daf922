// Package notifytest runs real receivers for notification tests: an SMTP
// server (github.com/emersion/go-smtp) that offers STARTTLS with a
// self-signed certificate and requires AUTH (PLAIN, or LOGIN) before MAIL,
// and an HTTP webhook receiver that checks each request's HMAC signature.
// Both keep what they received for the test to inspect.
package notifytest
