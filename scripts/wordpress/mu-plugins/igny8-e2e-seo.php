<?php
/**
 * Plugin Name: IGNY8 e2e SEO plugin stand-in (TEST ONLY)
 * Description: Installed by scripts/wordpress-e2e.sh into throwaway test sites only. Makes the
 * site look as if Yoast SEO or Rank Math were active, by defining the constant the companion
 * plugin checks (WPSEO_VERSION or RANK_MATH_VERSION), chosen by the option `igny8_e2e_seo_plugin`:
 * 'yoast', 'rank_math' or absent (neither). Nothing else of those plugins is emulated.
 * Tests switch it with update_option()/delete_option() (e.g. through wordpress-e2e.sh eval).
 * NEVER ship this with the igny8-bridge plugin or install it on a real site.
 */

if (!defined('ABSPATH')) {
    exit;
}

switch (get_option('igny8_e2e_seo_plugin')) {
    case 'yoast':
        defined('WPSEO_VERSION') || define('WPSEO_VERSION', '0.0.0-e2e');
        break;
    case 'rank_math':
        defined('RANK_MATH_VERSION') || define('RANK_MATH_VERSION', '0.0.0-e2e');
        break;
}
