<?php
/**
 * Settings → IGNY8 Bridge: three values (service URL, site id, API key) and the onboarding call.
 *
 * The page renders its fields with the Settings API and posts to admin-post.php (own nonce and
 * capability check) so the onboarding call and the structure push run exactly once per save.
 * The save logic is igny8_bridge_save_settings(), callable without a browser.
 *
 * @package Igny8_Bridge
 */

defined( 'ABSPATH' ) || exit;

const IGNY8_BRIDGE_PAGE_SLUG = 'igny8-bridge';

/**
 * Normalises a service URL: http(s) with a host, no query/fragment, no trailing slash; '' when invalid.
 *
 * @param mixed $value Raw value.
 */
function igny8_bridge_sanitize_service_url( $value ): string {
	$value = trim( (string) $value );
	if ( '' === $value ) {
		return '';
	}
	$value = esc_url_raw( $value, array( 'http', 'https' ) );
	$parts = wp_parse_url( $value );
	if ( ! is_array( $parts ) || empty( $parts['scheme'] ) || empty( $parts['host'] ) || ! in_array( strtolower( $parts['scheme'] ), array( 'http', 'https' ), true ) ) {
		return '';
	}
	$url = strtolower( $parts['scheme'] ) . '://';
	if ( isset( $parts['user'] ) ) {
		$url .= $parts['user'] . ( isset( $parts['pass'] ) ? ':' . $parts['pass'] : '' ) . '@';
	}
	$url .= $parts['host'];
	if ( isset( $parts['port'] ) ) {
		$url .= ':' . (int) $parts['port'];
	}
	if ( isset( $parts['path'] ) ) {
		$url .= $parts['path'];
	}
	return untrailingslashit( $url );
}

/**
 * Site id: positive integer, 0 when invalid.
 *
 * @param mixed $value Raw value.
 */
function igny8_bridge_sanitize_site_id( $value ): int {
	$id = filter_var( trim( (string) $value ), FILTER_VALIDATE_INT, array( 'options' => array( 'min_range' => 1 ) ) );
	return false === $id ? 0 : (int) $id;
}

/**
 * API key: trimmed, without whitespace or control characters.
 *
 * @param mixed $value Raw value.
 */
function igny8_bridge_sanitize_api_key( $value ): string {
	return (string) preg_replace( '/[\x00-\x20\x7F]/', '', (string) $value );
}

/**
 * Saves the settings, runs the onboarding call and, on success, pushes the site structure.
 * No capability check here (callers check); usable from PHP CLI.
 *
 * @param array $values Keys 'service_url', 'site_id', 'api_key' (blank api_key keeps the stored key).
 * @return array{
 *   success: bool, saved: bool, message: string, integration_id: ?int, http_status: ?int,
 *   error: ?array{code: string, message: string, details: mixed}, structure: ?array
 * }
 */
function igny8_bridge_save_settings( array $values ): array {
	$result = array(
		'success'        => false,
		'saved'          => false,
		'message'        => '',
		'integration_id' => null,
		'http_status'    => null,
		'error'          => null,
		'structure'      => null,
	);

	$url     = igny8_bridge_sanitize_service_url( $values['service_url'] ?? '' );
	$site_id = igny8_bridge_sanitize_site_id( $values['site_id'] ?? '' );
	$key_in  = igny8_bridge_sanitize_api_key( $values['api_key'] ?? '' );
	$key     = '' !== $key_in ? $key_in : igny8_bridge_get_api_key();

	$errors = array();
	if ( '' === $url ) {
		$errors['service_url'] = __( 'Enter the service URL, e.g. https://integrations.example.com.', 'igny8-bridge' );
	}
	if ( $site_id <= 0 ) {
		$errors['site_id'] = __( 'The site id is a positive whole number.', 'igny8-bridge' );
	}
	if ( '' === $key ) {
		$errors['api_key'] = __( 'Enter the site API key.', 'igny8-bridge' );
	}
	if ( $errors ) {
		$result['message'] = implode( ' ', $errors );
		$result['error']   = array(
			'code'    => 'validation_error',
			'message' => $result['message'],
			'details' => $errors,
		);
		return $result;
	}

	update_option( IGNY8_BRIDGE_OPT_SERVICE_URL, $url, true );
	update_option( IGNY8_BRIDGE_OPT_SITE_ID, $site_id, true );
	update_option( IGNY8_BRIDGE_OPT_API_KEY, $key, true );
	$result['saved'] = true;

	$body     = (string) wp_json_encode(
		array(
			'site_id'  => $site_id,
			'api_key'  => $key,
			'site_url' => home_url(),
		),
		JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
	);
	$response = igny8_bridge_http_post_json( igny8_bridge_service_endpoint( 'integration/integrations/test-connection/' ), $body );

	$result['http_status'] = $response['status'] ? $response['status'] : null;
	$data                  = is_array( $response['data'] ) ? $response['data'] : array();
	$integration_id        = isset( $data['integration_id'] ) ? absint( $data['integration_id'] ) : 0;

	if ( $response['ok'] && false !== ( $data['success'] ?? true ) && $integration_id > 0 ) {
		update_option( IGNY8_BRIDGE_OPT_INTEGRATION_ID, $integration_id, true );
		$result['success']        = true;
		$result['integration_id'] = $integration_id;
		$result['message']        = '' !== $response['message'] ? $response['message'] : __( 'Connected.', 'igny8-bridge' );
		igny8_bridge_schedule_events();
		$result['structure'] = igny8_bridge_push_structure();
	} else {
		// The service deletes an integration whose first test failed: forget ours too.
		update_option( IGNY8_BRIDGE_OPT_INTEGRATION_ID, 0, true );
		if ( $response['ok'] ) {
			$result['error'] = array(
				'code'    => 'unexpected_response',
				'message' => __( 'The service answered without an integration id.', 'igny8-bridge' ),
				'details' => null,
			);
		} elseif ( $response['error'] ) {
			$result['error'] = $response['error'];
			if ( '' === $result['error']['message'] ) {
				$result['error']['message'] = $response['message'];
			}
		} else {
			$result['error'] = array(
				'code'    => $response['network_error'] ? 'network_error' : 'http_error',
				'message' => $response['message'],
				'details' => null,
			);
		}
		$result['message'] = $result['error']['message'];
	}

	update_option(
		IGNY8_BRIDGE_OPT_LAST_CONNECTION,
		array(
			'time'        => igny8_bridge_now_iso(),
			'success'     => $result['success'],
			'http_status' => $result['http_status'],
			'message'     => $result['message'],
		),
		false
	);

	return $result;
}

/**
 * Menu entry.
 */
function igny8_bridge_admin_menu(): void {
	add_options_page(
		__( 'IGNY8 Bridge', 'igny8-bridge' ),
		__( 'IGNY8 Bridge', 'igny8-bridge' ),
		'manage_options',
		IGNY8_BRIDGE_PAGE_SLUG,
		'igny8_bridge_render_settings_page'
	);
}
add_action( 'admin_menu', 'igny8_bridge_admin_menu' );

/**
 * Settings API registration (sections, fields, sanitizers).
 */
function igny8_bridge_admin_init(): void {
	register_setting( 'igny8_bridge', IGNY8_BRIDGE_OPT_SERVICE_URL, array( 'type' => 'string', 'sanitize_callback' => 'igny8_bridge_sanitize_service_url', 'default' => '' ) );
	register_setting( 'igny8_bridge', IGNY8_BRIDGE_OPT_SITE_ID, array( 'type' => 'integer', 'sanitize_callback' => 'igny8_bridge_sanitize_site_id', 'default' => 0 ) );
	register_setting( 'igny8_bridge', IGNY8_BRIDGE_OPT_API_KEY, array( 'type' => 'string', 'sanitize_callback' => 'igny8_bridge_sanitize_api_key', 'default' => '' ) );

	add_settings_section(
		'igny8_bridge_connection',
		__( 'Connection', 'igny8-bridge' ),
		'igny8_bridge_render_section',
		IGNY8_BRIDGE_PAGE_SLUG
	);
	add_settings_field( 'igny8_bridge_service_url', __( 'Service URL', 'igny8-bridge' ), 'igny8_bridge_render_field_service_url', IGNY8_BRIDGE_PAGE_SLUG, 'igny8_bridge_connection', array( 'label_for' => 'igny8_bridge_service_url' ) );
	add_settings_field( 'igny8_bridge_site_id', __( 'Site ID', 'igny8-bridge' ), 'igny8_bridge_render_field_site_id', IGNY8_BRIDGE_PAGE_SLUG, 'igny8_bridge_connection', array( 'label_for' => 'igny8_bridge_site_id' ) );
	add_settings_field( 'igny8_bridge_api_key', __( 'API key', 'igny8-bridge' ), 'igny8_bridge_render_field_api_key', IGNY8_BRIDGE_PAGE_SLUG, 'igny8_bridge_connection', array( 'label_for' => 'igny8_bridge_api_key' ) );
}
add_action( 'admin_init', 'igny8_bridge_admin_init' );

/**
 * Section intro.
 */
function igny8_bridge_render_section(): void {
	echo '<p>' . esc_html__( 'Enter the values shown by IGNY8 for this site. Saving tests the connection and sends the list of post types and taxonomies.', 'igny8-bridge' ) . '</p>';
}

/**
 * Service URL field.
 */
function igny8_bridge_render_field_service_url(): void {
	printf(
		'<input type="url" class="regular-text code" id="igny8_bridge_service_url" name="igny8_bridge[service_url]" value="%s" placeholder="https://integrations.example.com" required />',
		esc_attr( igny8_bridge_get_service_url() )
	);
}

/**
 * Site id field.
 */
function igny8_bridge_render_field_site_id(): void {
	$site_id = igny8_bridge_get_site_id();
	printf(
		'<input type="number" min="1" step="1" class="small-text" id="igny8_bridge_site_id" name="igny8_bridge[site_id]" value="%s" required />',
		esc_attr( $site_id > 0 ? (string) $site_id : '' )
	);
}

/**
 * API key field: never shows the stored key, only its last four characters.
 */
function igny8_bridge_render_field_api_key(): void {
	$key = igny8_bridge_get_api_key();
	echo '<input type="password" class="regular-text" id="igny8_bridge_api_key" name="igny8_bridge[api_key]" value="" autocomplete="new-password" spellcheck="false" />';
	if ( '' !== $key ) {
		$tail = strlen( $key ) >= 12 ? substr( $key, -4 ) : '';
		echo '<p class="description">' . esc_html(
			'' !== $tail
				/* translators: %s: last four characters of the stored key */
				? sprintf( __( 'A key ending in …%s is stored. Leave blank to keep it.', 'igny8-bridge' ), $tail )
				: __( 'A key is stored. Leave blank to keep it.', 'igny8-bridge' )
		) . '</p>';
	}
}

/**
 * Settings page.
 */
function igny8_bridge_render_settings_page(): void {
	if ( ! current_user_can( 'manage_options' ) ) {
		return;
	}

	$notice = get_transient( 'igny8_bridge_notice_' . get_current_user_id() );
	if ( is_array( $notice ) ) {
		delete_transient( 'igny8_bridge_notice_' . get_current_user_id() );
	}

	echo '<div class="wrap"><h1>' . esc_html( get_admin_page_title() ) . '</h1>';

	if ( is_array( $notice ) ) {
		foreach ( $notice as $item ) {
			printf(
				'<div class="notice notice-%1$s is-dismissible"><p>%2$s</p></div>',
				esc_attr( 'success' === ( $item['type'] ?? '' ) ? 'success' : ( 'warning' === ( $item['type'] ?? '' ) ? 'warning' : 'error' ) ),
				esc_html( (string) ( $item['message'] ?? '' ) )
			);
		}
	}

	echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '">';
	echo '<input type="hidden" name="action" value="igny8_bridge_save" />';
	wp_nonce_field( 'igny8_bridge_save', 'igny8_bridge_nonce' );
	do_settings_sections( IGNY8_BRIDGE_PAGE_SLUG );
	submit_button( __( 'Save and connect', 'igny8-bridge' ) );
	echo '</form>';

	// Status overview.
	$integration_id = igny8_bridge_get_integration_id();
	$last_push      = get_option( IGNY8_BRIDGE_OPT_LAST_STRUCTURE_PUSH );
	echo '<h2>' . esc_html__( 'Status', 'igny8-bridge' ) . '</h2><table class="form-table" role="presentation"><tbody>';
	printf(
		'<tr><th scope="row">%s</th><td>%s</td></tr>',
		esc_html__( 'Connection', 'igny8-bridge' ),
		esc_html(
			igny8_bridge_is_connected()
				/* translators: %d: integration id */
				? sprintf( __( 'Connected (integration %d)', 'igny8-bridge' ), $integration_id )
				: __( 'Not connected', 'igny8-bridge' )
		)
	);
	if ( is_array( $last_push ) ) {
		printf(
			'<tr><th scope="row">%s</th><td>%s</td></tr>',
			esc_html__( 'Last structure push', 'igny8-bridge' ),
			esc_html( sprintf( '%s — %s', (string) ( $last_push['time'] ?? '' ), (string) ( $last_push['message'] ?? '' ) ) )
		);
	}
	printf(
		'<tr><th scope="row">%s</th><td>%d</td></tr>',
		esc_html__( 'Webhooks waiting for retry', 'igny8-bridge' ),
		(int) igny8_bridge_outbox_count()
	);
	echo '</tbody></table>';

	if ( igny8_bridge_is_connected() ) {
		echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '">';
		echo '<input type="hidden" name="action" value="igny8_bridge_push" />';
		wp_nonce_field( 'igny8_bridge_push', 'igny8_bridge_push_nonce' );
		submit_button( __( 'Send structure and retry webhooks now', 'igny8-bridge' ), 'secondary', 'submit', false );
		echo '</form>';
	}
	echo '</div>';
}

/**
 * Stores notices for the next page view of the current user.
 *
 * @param array $items List of {type, message}.
 */
function igny8_bridge_set_notice( array $items ): void {
	set_transient( 'igny8_bridge_notice_' . get_current_user_id(), $items, 5 * MINUTE_IN_SECONDS );
}

/**
 * Back to the settings page.
 */
function igny8_bridge_redirect_to_settings(): void {
	wp_safe_redirect( admin_url( 'options-general.php?page=' . IGNY8_BRIDGE_PAGE_SLUG ) );
	exit;
}

/**
 * admin-post.php?action=igny8_bridge_save
 */
function igny8_bridge_handle_save(): void {
	if ( ! current_user_can( 'manage_options' ) ) {
		wp_die( esc_html__( 'Sorry, you are not allowed to manage these options.', 'igny8-bridge' ), 403 );
	}
	check_admin_referer( 'igny8_bridge_save', 'igny8_bridge_nonce' );

	// phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- sanitized field by field below.
	$raw    = isset( $_POST['igny8_bridge'] ) && is_array( $_POST['igny8_bridge'] ) ? wp_unslash( $_POST['igny8_bridge'] ) : array();
	$values = array(
		'service_url' => isset( $raw['service_url'] ) ? sanitize_text_field( (string) $raw['service_url'] ) : '',
		'site_id'     => isset( $raw['site_id'] ) ? sanitize_text_field( (string) $raw['site_id'] ) : '',
		'api_key'     => isset( $raw['api_key'] ) ? igny8_bridge_sanitize_api_key( $raw['api_key'] ) : '',
	);

	$result = igny8_bridge_save_settings( $values );
	$items  = array();
	if ( $result['success'] ) {
		$items[] = array(
			'type'    => 'success',
			'message' => $result['message'],
		);
		if ( is_array( $result['structure'] ) && ! $result['structure']['success'] ) {
			$items[] = array(
				'type'    => 'warning',
				/* translators: %s: error message */
				'message' => sprintf( __( 'Connected, but sending the site structure failed: %s', 'igny8-bridge' ), $result['structure']['message'] ),
			);
		}
	} else {
		$items[] = array(
			'type'    => 'error',
			'message' => $result['saved']
				/* translators: %s: error message from the service */
				? sprintf( __( 'Settings saved, but the connection failed: %s', 'igny8-bridge' ), $result['message'] )
				: $result['message'],
		);
	}
	igny8_bridge_set_notice( $items );
	igny8_bridge_redirect_to_settings();
}
add_action( 'admin_post_igny8_bridge_save', 'igny8_bridge_handle_save' );

/**
 * admin-post.php?action=igny8_bridge_push
 */
function igny8_bridge_handle_push(): void {
	if ( ! current_user_can( 'manage_options' ) ) {
		wp_die( esc_html__( 'Sorry, you are not allowed to manage these options.', 'igny8-bridge' ), 403 );
	}
	check_admin_referer( 'igny8_bridge_push', 'igny8_bridge_push_nonce' );

	$push   = igny8_bridge_push_structure();
	$drain  = igny8_bridge_drain_outbox( true );
	$items  = array(
		array(
			'type'    => $push['success'] ? 'success' : 'error',
			'message' => $push['message'],
		),
		array(
			'type'    => $drain['remaining'] > 0 ? 'warning' : 'success',
			/* translators: 1: delivered count, 2: remaining count */
			'message' => sprintf( __( 'Queued webhooks: %1$d delivered, %2$d still waiting.', 'igny8-bridge' ), $drain['delivered'], $drain['remaining'] ),
		),
	);
	igny8_bridge_set_notice( $items );
	igny8_bridge_redirect_to_settings();
}
add_action( 'admin_post_igny8_bridge_push', 'igny8_bridge_handle_push' );

/**
 * "Settings" link on the Plugins screen.
 *
 * @param array $links Links.
 */
function igny8_bridge_action_links( $links ): array {
	array_unshift( $links, '<a href="' . esc_url( admin_url( 'options-general.php?page=' . IGNY8_BRIDGE_PAGE_SLUG ) ) . '">' . esc_html__( 'Settings', 'igny8-bridge' ) . '</a>' );
	return $links;
}
add_filter( 'plugin_action_links_' . plugin_basename( IGNY8_BRIDGE_FILE ), 'igny8_bridge_action_links' );
