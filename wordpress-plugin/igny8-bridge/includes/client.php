<?php
/**
 * Settings accessors and the HTTP client that talks to the Integration Service.
 *
 * Every outgoing request uses wp_safe_remote_post(): it refuses loopback/private hosts and
 * ports other than 80, 443 and 8080, so the plugin cannot be turned into an SSRF tool.
 * Local development widens it with the core filters `http_request_host_is_external` and
 * `http_allowed_safe_ports` (see readme.txt).
 *
 * @package Igny8_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Service base URL without trailing slash ('' when not set).
 */
function igny8_bridge_get_service_url(): string {
	return untrailingslashit( (string) get_option( IGNY8_BRIDGE_OPT_SERVICE_URL, '' ) );
}

/**
 * Site id on the service (0 when not set).
 */
function igny8_bridge_get_site_id(): int {
	return absint( get_option( IGNY8_BRIDGE_OPT_SITE_ID, 0 ) );
}

/**
 * The site's API key ('' when not set). Never log or display it.
 */
function igny8_bridge_get_api_key(): string {
	return (string) get_option( IGNY8_BRIDGE_OPT_API_KEY, '' );
}

/**
 * Integration id returned by the onboarding call (0 when not connected).
 */
function igny8_bridge_get_integration_id(): int {
	return absint( get_option( IGNY8_BRIDGE_OPT_INTEGRATION_ID, 0 ) );
}

/**
 * True when service URL, site id and API key are all set.
 */
function igny8_bridge_is_configured(): bool {
	return '' !== igny8_bridge_get_service_url()
		&& igny8_bridge_get_site_id() > 0
		&& '' !== igny8_bridge_get_api_key();
}

/**
 * True when configured and the onboarding call succeeded (an integration id is stored).
 */
function igny8_bridge_is_connected(): bool {
	return igny8_bridge_is_configured() && igny8_bridge_get_integration_id() > 0;
}

/**
 * Full URL of a service path, e.g. igny8_bridge_service_endpoint( 'integration/webhooks/wordpress/status/' ).
 *
 * @param string $path Path below /api/v1/.
 */
function igny8_bridge_service_endpoint( string $path ): string {
	return igny8_bridge_get_service_url() . '/api/v1/' . ltrim( $path, '/' );
}

/**
 * Current UTC time as ISO 8601 (Y-m-d\TH:i:s\Z).
 */
function igny8_bridge_now_iso(): string {
	return gmdate( 'Y-m-d\TH:i:s\Z' );
}

/**
 * Converts a MySQL GMT datetime ('Y-m-d H:i:s') to ISO 8601 UTC, null for empty/zero dates.
 *
 * @param string|null $gmt MySQL datetime in UTC.
 */
function igny8_bridge_mysql_gmt_to_iso( ?string $gmt ): ?string {
	if ( empty( $gmt ) || '0000-00-00 00:00:00' === $gmt ) {
		return null;
	}
	$ts = strtotime( $gmt . ' UTC' );
	return false === $ts ? null : gmdate( 'Y-m-d\TH:i:s\Z', $ts );
}

/**
 * Standard Webhooks signature header value.
 *
 * Signing choice (the Python side must match): the secret is the site's API key used as raw
 * UTF-8 bytes as the HMAC key. It is NOT base64-decoded and has no `whsec_` prefix, unlike the
 * usual Standard Webhooks secret format.
 *   signature = "v1," . base64( HMAC-SHA256( key = api_key bytes, msg = "{id}.{timestamp}.{body}" ) )
 * where body is the exact request body bytes that are sent.
 *
 * @param string $webhook_id Value of the webhook-id header.
 * @param int    $timestamp  Value of the webhook-timestamp header (unix seconds).
 * @param string $body       Raw request body.
 * @param string $secret     The API key.
 */
function igny8_bridge_sign( string $webhook_id, int $timestamp, string $body, string $secret ): string {
	return 'v1,' . base64_encode( hash_hmac( 'sha256', $webhook_id . '.' . $timestamp . '.' . $body, $secret, true ) ); // phpcs:ignore WordPress.PHP.DiscouragedPHPFunctions.obfuscation_base64_encode
}

/**
 * New webhook id: "msg_" + a v4 UUID without dashes.
 */
function igny8_bridge_new_webhook_id(): string {
	return 'msg_' . str_replace( '-', '', wp_generate_uuid4() );
}

/**
 * POSTs JSON to the service and normalises the answer.
 *
 * @param string $url     Absolute URL.
 * @param string $body    JSON body (sent verbatim).
 * @param array  $headers Extra headers.
 * @return array{ok: bool, status: int, network_error: bool, data: mixed, message: string, error: ?array}
 *               status 0 on a network error; message is safe to show/log (never contains the key).
 */
function igny8_bridge_http_post_json( string $url, string $body, array $headers = array() ): array {
	$headers = array_merge(
		array(
			'Content-Type' => 'application/json',
			'Accept'       => 'application/json',
		),
		$headers
	);

	$response = wp_safe_remote_post(
		$url,
		array(
			'timeout'     => 5,
			'redirection' => 0,
			'headers'     => $headers,
			'body'        => $body,
			'data_format' => 'body',
			'user-agent'  => 'IGNY8-Bridge/' . IGNY8_BRIDGE_VERSION . '; ' . home_url( '/' ),
		)
	);

	if ( is_wp_error( $response ) ) {
		$message = $response->get_error_message();
		if ( 'A valid URL was not provided.' === $message ) {
			$message = __( 'WordPress refused the service URL (outgoing requests are limited to public hosts on ports 80, 443 and 8080; see the plugin readme).', 'igny8-bridge' );
		}
		return array(
			'ok'            => false,
			'status'        => 0,
			'network_error' => true,
			'data'          => null,
			/* translators: %s: transport error message */
			'message'       => sprintf( __( 'Could not reach the service: %s', 'igny8-bridge' ), $message ),
			'error'         => null,
		);
	}

	$status = (int) wp_remote_retrieve_response_code( $response );
	$raw    = (string) wp_remote_retrieve_body( $response );
	$data   = json_decode( $raw, true );
	$ok     = $status >= 200 && $status < 300;
	$error  = null;
	$msg    = '';

	if ( ! $ok ) {
		if ( is_array( $data ) && isset( $data['error'] ) && is_array( $data['error'] ) ) {
			$error = array(
				'code'    => isset( $data['error']['code'] ) ? (string) $data['error']['code'] : '',
				'message' => isset( $data['error']['message'] ) ? (string) $data['error']['message'] : '',
				'details' => $data['error']['details'] ?? null,
			);
			$msg   = '' !== $error['message'] ? $error['message'] : $error['code'];
		}
		if ( '' === $msg ) {
			/* translators: %d: HTTP status code */
			$msg = sprintf( __( 'The service answered HTTP %d.', 'igny8-bridge' ), $status );
		}
	} elseif ( is_array( $data ) && isset( $data['message'] ) && is_string( $data['message'] ) ) {
		$msg = $data['message'];
	}

	return array(
		'ok'            => $ok,
		'status'        => $status,
		'network_error' => false,
		'data'          => $data,
		'message'       => $msg,
		'error'         => $error,
	);
}
