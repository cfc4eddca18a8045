/** Tailwind CSS v3 configuration for the Callway landing page (public/). */
/** @type {import('tailwindcss').Config} */
module.exports = {
  content: ['./public/**/*.html', './public/assets/js/**/*.js'],
  theme: {
    extend: {
      fontFamily: {
        sans: [
          'Inter', 'ui-sans-serif', 'system-ui', '-apple-system', 'Segoe UI', 'Roboto',
          'Helvetica Neue', 'Arial', 'Noto Sans', 'Liberation Sans', 'sans-serif',
        ],
      },
      colors: {
        brand: {
          50: '#eef2ff', 100: '#e0e7ff', 200: '#c7d2fe', 300: '#a5b4fc', 400: '#818cf8',
          500: '#6366f1', 600: '#4f46e5', 700: '#4338ca', 800: '#3730a3', 900: '#312e81', 950: '#1e1b4b',
        },
      },
      boxShadow: {
        phone: '0 50px 100px -20px rgba(30,27,75,.45), 0 30px 60px -30px rgba(0,0,0,.5)',
      },
    },
  },
  plugins: [],
  // Emit the --tw-* defaults only on the selectors that need them (smaller CSS).
  experimental: { optimizeUniversalDefaults: true },
};
