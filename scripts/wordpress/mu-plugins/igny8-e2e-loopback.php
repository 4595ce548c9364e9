<?php
/**
 * Plugin Name: IGNY8 e2e loopback (TEST ONLY)
 * Description: Installed by scripts/wordpress-e2e.sh into throwaway test sites only. Lets
 * wp_safe_remote_get()/wp_safe_remote_post() reach the Integration Service running on loopback
 * (127.0.0.1, localhost, ::1) on any port, and records outgoing e-mail instead of sending it.
 * NEVER ship this to a real site: it turns off WordPress's SSRF protection for loopback.
 *
 * Extra hosts can be allowed with the constant IGNY8_E2E_ALLOWED_HOSTS (comma-separated),
 * which wp-config.php sets from WP_E2E_ALLOWED_HOSTS when the site is created.
 */

if (!function_exists('igny8_e2e_allowed_host')) {
    function igny8_e2e_allowed_host($host)
    {
        $host = strtolower(trim((string) $host, '[]'));
        $extra = defined('IGNY8_E2E_ALLOWED_HOSTS') ? array_filter(array_map('trim', explode(',', strtolower(IGNY8_E2E_ALLOWED_HOSTS)))) : [];
        return $host === 'localhost' || $host === '::1' || strpos($host, '127.') === 0 || in_array($host, $extra, true);
    }
}

// wp_http_validate_url(): loopback counts as "external", so the safe HTTP API may call it.
add_filter('http_request_host_is_external', function ($external, $host, $url) {
    return igny8_e2e_allowed_host($host) ? true : $external;
}, 10, 3);

// wp_http_validate_url(): any port (the service runs on e.g. 5000 or an ephemeral test port).
add_filter('http_allowed_safe_ports', function ($ports, $host, $url) {
    $port = parse_url($url, PHP_URL_PORT);
    if ($port && is_array($ports) && !in_array($port, $ports, true)) {
        $ports[] = $port;
    }
    return $ports;
}, 10, 3);

// No real mail: append each message as a JSON line to wp-content/e2e-mail.log.
add_filter('pre_wp_mail', function ($return, $atts) {
    @file_put_contents(
        WP_CONTENT_DIR . '/e2e-mail.log',
        json_encode(['time' => gmdate('c'), 'to' => $atts['to'], 'subject' => $atts['subject']]) . "\n",
        FILE_APPEND | LOCK_EX
    );
    return true;
}, 10, 2);
